// Pixels to the fingerprints the server understands, and the picture decoding used for it.

import { cropHashes } from "./crops.js";
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

/**
 * A still picture's hashes: those of `hashPixels` and, unless the picture is refused as low
 * in information, `crops`: the extra PDQ hashes of its crops (crops.js). Video frames have none.
 */
export function hashPicture(rgba, width, height) {
  const result = hashPixels(rgba, width, height);
  return { ...result, crops: result.lowInformation ? [] : cropHashes(rgba, width, height) };
}

/** The items of a case payload for one hashed picture or frame (its full-picture hashes). */
export function hashItems({ pdq, quality, phash: ph }) {
  return [
    { signal: "pdq", hash: pdq, quality },
    { signal: "phash", hash: ph },
  ];
}

/** The payload items of a picture's crop hashes, in order (none for a video frame). */
export function cropItems({ crops = [] }) {
  return crops.map(({ pdq, quality }) => ({ signal: "pdq", hash: pdq, quality }));
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
