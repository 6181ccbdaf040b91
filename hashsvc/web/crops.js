// Extra PDQ hashes of a few crops of each still picture, so that a re-upload cropped by
// 10-20 % is still found. Keep in step with hashsvc/signals/crops.py: the same boxes (integer
// arithmetic only), the same pixels, the same PDQ, the same low-information rule.

import { PDQ_MIN_QUALITY, SET_BITS, popcount } from "./lowinfo.js";
import { pdqHash } from "./pdq.js";

/** A picture whose shorter side is below this many pixels gets no crop hashes. */
export const MIN_CROP_SIDE = 100;

/**
 * `[keep per cent of width and height, anchor]`, in the order the hashes are sent. Anchor:
 * "c" centred; "l", "r", "t", "b" against that side (centred along it); "tl"... a corner.
 */
export const CROPS = [
  [95, "c"],
  [90, "c"],
  [85, "c"],
  [80, "c"],
  [95, "l"],
  [95, "r"],
];

/** The box `[left, top, right, bottom]` (right and bottom exclusive) of one crop. */
export function cropBox(width, height, keep, anchor) {
  // Integers below 2^53 throughout: the same values as Python's // on non-negative ints.
  const cw = Math.floor((width * keep) / 100);
  const ch = Math.floor((height * keep) / 100);
  const centredLeft = Math.floor((width - cw) / 2);
  const centredTop = Math.floor((height - ch) / 2);
  const left = anchor.includes("l") ? 0 : anchor.includes("r") ? width - cw : centredLeft;
  const top = anchor.includes("t") ? 0 : anchor.includes("b") ? height - ch : centredTop;
  return [left, top, left + cw, top + ch];
}

/** `[{ variant, box }]` for a picture of this size; none when it is too small to crop. */
export function cropBoxes(width, height) {
  if (Math.min(width, height) < MIN_CROP_SIDE) {
    return [];
  }
  return CROPS.map(([keep, anchor]) => ({
    variant: `crop-${anchor}${keep}`,
    box: cropBox(width, height, keep, anchor),
  }));
}

/** The RGBA pixels inside `box` of an RGBA picture `width` pixels wide. */
export function cropRgba(rgba, width, [left, top, right, bottom]) {
  const rowBytes = (right - left) * 4;
  const out = new Uint8ClampedArray(rowBytes * (bottom - top));
  for (let y = top; y < bottom; y += 1) {
    const start = (y * width + left) * 4;
    out.set(rgba.subarray(start, start + rowBytes), (y - top) * rowBytes);
  }
  return out;
}

/**
 * The crop hashes of a still picture that pass the low-information rule:
 * `[{ variant, pdq, quality }]`, in `CROPS` order.
 */
export function cropHashes(rgba, width, height) {
  const out = [];
  for (const { variant, box } of cropBoxes(width, height)) {
    const pixels = cropRgba(rgba, width, box);
    const { hash, quality } = pdqHash(pixels, box[2] - box[0], box[3] - box[1]);
    const setBits = popcount(hash);
    if (quality >= PDQ_MIN_QUALITY && setBits >= SET_BITS.pdq.min && setBits <= SET_BITS.pdq.max) {
      out.push({ variant, pdq: hash, quality });
    }
  }
  return out;
}
