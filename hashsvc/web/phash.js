// pHash, the DCT perceptual hash of the imagehash library (64 bits), written from its
// description: greyscale, Lanczos resize to 32x32, 2D DCT-II, the top-left 8x8 coefficients
// compared with their median. Bits row by row, most significant first (imagehash's hex form).

import { dct2dTopLeft } from "./dct.js";
import { greyFromRgba, resizeLanczos } from "./resample.js";

const HASH_SIZE = 8;
const IMAGE_SIZE = HASH_SIZE * 4;

function median(values) {
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** pHash of the 64 low frequencies of a 32x32 greyscale image: 16 hex characters. */
export function phashFromSmall(small) {
  const low = dct2dTopLeft(small, IMAGE_SIZE, HASH_SIZE);
  const threshold = median(low);
  const bytes = new Uint8Array(HASH_SIZE);
  for (let i = 0; i < low.length; i += 1) {
    if (low[i] > threshold) {
      bytes[i >> 3] |= 0x80 >> (i & 7);
    }
  }
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** pHash of RGBA pixels: `{ hash: 16 hex characters }` (no quality score). */
export function phash(rgba, width, height) {
  const grey = greyFromRgba(rgba, width, height);
  const small = resizeLanczos(grey, width, height, IMAGE_SIZE, IMAGE_SIZE);
  return { hash: phashFromSmall(small) };
}
