// Pixels to the fingerprints the server understands, and the picture decoding used for it.

import { lowInformation } from "./lowinfo.js";
import { pdqHash } from "./pdq.js";
import { phash } from "./phash.js";

/**
 * Both hashes of RGBA pixels, with the low-information verdict:
 * `{ pdq, quality, phash, lowInformation: null | { signal, reason, value } }`.
 */
export function hashPixels(rgba, width, height) {
  const { hash: pdq, quality } = pdqHash(rgba, width, height);
  const { hash: ph } = phash(rgba, width, height);
  const result = { pdq, quality, phash: ph };
  return { ...result, lowInformation: lowInformation(result) };
}

/** The items of a case payload for one hashed picture or frame. */
export function hashItems({ pdq, quality, phash: ph }) {
  return [
    { signal: "pdq", hash: pdq, quality },
    { signal: "phash", hash: ph },
  ];
}

/**
 * Decode a picture file to RGBA pixels the way the server does: EXIF orientation applied,
 * no colour management (embedded ICC profiles ignored), alpha not premultiplied.
 */
export async function decodePicture(blob) {
  const bitmap = await createImageBitmap(blob, {
    imageOrientation: "from-image",
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  try {
    return pixelsOf(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** RGBA pixels of anything a canvas can draw (a bitmap, a video element at a frame). */
export function pixelsOf(source, width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0, width, height);
  const data = context.getImageData(0, 0, width, height, { colorSpace: "srgb" });
  return { width, height, data: data.data };
}
