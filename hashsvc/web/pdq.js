// PDQ, Meta's 256-bit photo hash, written from the published algorithm (the PDQ paper
// "The TMK+PDQF Video-Hashing Algorithm and the PDQ Image Similarity Algorithm" and the
// hashing/pdq description): luminance, Jarosz filter (two passes of a box filter along x then
// y), decimation to 64x64, quality from the gradient sum, 16x16 DCT, median threshold.
//
// Arithmetic is single precision (Float32Array storage and Math.fround after every operation)
// in the same order as the reference, so the same decoded pixels give the same bits and the
// same quality as the server's hasher.

import { pdqDctMatrix } from "./dct.js";

const f32 = Math.fround;
const DOWNSAMPLE_DIMS = 64;
const JAROSZ_PASSES = 2;
const MIN_HASHABLE_DIM = 5; // smaller images hash to all zeros with quality 0

/** Window size of the Jarosz box filter for one dimension (the reference's formula). */
export function jaroszWindowSize(oldDimension, newDimension = DOWNSAMPLE_DIMS) {
  return Math.trunc((oldDimension + 2 * newDimension - 1) / (2 * newDimension));
}

/** Float luminance of RGBA pixels: 0.299 R + 0.587 G + 0.114 B, rounded to single precision. */
export function lumaFromRgba(rgba, width, height) {
  const luma = new Float32Array(width * height);
  for (let i = 0, p = 0; i < luma.length; i += 1, p += 4) {
    luma[i] = rgba[p] * 0.299 + rgba[p + 1] * 0.587 + rgba[p + 2] * 0.114;
  }
  return luma;
}

/** One box-filter pass over a strided vector, with the reference's shrinking edge windows. */
function box1D(input, output, start, length, stride, fullWindow) {
  const halfWindow = Math.trunc((fullWindow + 2) / 2);
  const phase1 = halfWindow - 1;
  const phase2 = fullWindow - halfWindow + 1;
  const phase3 = length - fullWindow;
  const phase4 = halfWindow - 1;
  let li = start;
  let ri = start;
  let oi = start;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < phase1; i += 1) {
    sum = f32(sum + input[ri]);
    count += 1;
    ri += stride;
  }
  for (let i = 0; i < phase2; i += 1) {
    sum = f32(sum + input[ri]);
    count += 1;
    output[oi] = sum / count;
    ri += stride;
    oi += stride;
  }
  for (let i = 0; i < phase3; i += 1) {
    sum = f32(sum + input[ri]);
    sum = f32(sum - input[li]);
    output[oi] = sum / count;
    li += stride;
    ri += stride;
    oi += stride;
  }
  for (let i = 0; i < phase4; i += 1) {
    sum = f32(sum - input[li]);
    count -= 1;
    output[oi] = sum / count;
    li += stride;
    oi += stride;
  }
}

/** The Jarosz filter in place on `buffer` (`scratch` has the same size). */
export function jaroszFilter(buffer, scratch, rows, cols, windowAlongRows, windowAlongCols) {
  for (let pass = 0; pass < JAROSZ_PASSES; pass += 1) {
    for (let i = 0; i < rows; i += 1) {
      box1D(buffer, scratch, i * cols, cols, 1, windowAlongRows);
    }
    for (let j = 0; j < cols; j += 1) {
      box1D(scratch, buffer, j, rows, cols, windowAlongCols);
    }
  }
}

/** Nearest samples at the centres of a 64x64 grid. */
export function decimate(buffer, rows, cols) {
  const out = new Float32Array(DOWNSAMPLE_DIMS * DOWNSAMPLE_DIMS);
  for (let i = 0; i < DOWNSAMPLE_DIMS; i += 1) {
    const ini = Math.trunc(((i + 0.5) * rows) / DOWNSAMPLE_DIMS);
    for (let j = 0; j < DOWNSAMPLE_DIMS; j += 1) {
      const inj = Math.trunc(((j + 0.5) * cols) / DOWNSAMPLE_DIMS);
      out[i * DOWNSAMPLE_DIMS + j] = buffer[ini * cols + inj];
    }
  }
  return out;
}

/** Quality 0-100: the sum of absolute neighbour differences of the 64x64 image, scaled. */
export function qualityMetric(a) {
  const n = DOWNSAMPLE_DIMS;
  let gradientSum = 0;
  for (let i = 0; i < n - 1; i += 1) {
    for (let j = 0; j < n; j += 1) {
      const d = Math.trunc(f32(f32(f32(a[i * n + j] - a[(i + 1) * n + j]) * 100) / 255));
      gradientSum += Math.abs(d);
    }
  }
  for (let i = 0; i < n; i += 1) {
    for (let j = 0; j < n - 1; j += 1) {
      const d = Math.trunc(f32(f32(f32(a[i * n + j] - a[i * n + j + 1]) * 100) / 255));
      gradientSum += Math.abs(d);
    }
  }
  return Math.min(100, Math.trunc(gradientSum / 90));
}

/** B = D A D^T with D the 16x64 DCT matrix: the 16x16 lowest non-DC frequencies. */
export function dct64To16(a) {
  const d = pdqDctMatrix();
  const t = new Float32Array(16 * 64);
  for (let i = 0; i < 16; i += 1) {
    for (let j = 0; j < 64; j += 1) {
      let sum = 0;
      for (let k = 0; k < 64; k += 1) {
        sum = f32(sum + f32(d[i * 64 + k] * a[k * 64 + j]));
      }
      t[i * 64 + j] = sum;
    }
  }
  const b = new Float32Array(16 * 16);
  for (let i = 0; i < 16; i += 1) {
    for (let j = 0; j < 16; j += 1) {
      let sum = 0;
      for (let k = 0; k < 64; k += 1) {
        sum = f32(sum + f32(t[i * 64 + k] * d[j * 64 + k]));
      }
      b[i * 16 + j] = sum;
    }
  }
  return b;
}

/** The 128th smallest value (what the reference's Torben median returns for 256 values). */
function lowerMedian(values) {
  const sorted = Float32Array.from(values).sort();
  return sorted[(sorted.length - 1) >> 1];
}

/**
 * 256 bits from the 16x16 DCT: coefficient k = 16 i + j is set when above the median.
 * The hex form puts coefficient 255 first (most significant), as pdqhash and ThreatExchange do.
 */
export function bitsToHex(b) {
  const median = lowerMedian(b);
  const bytes = new Uint8Array(32);
  for (let k = 0; k < 256; k += 1) {
    if (b[k] > median) {
      const position = 255 - k; // MSB-first position in the hex string
      bytes[position >> 3] |= 0x80 >> (position & 7);
    }
  }
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** PDQ of RGBA pixels: `{ hash: 64 hex characters, quality: 0-100 }`. */
export function pdqHash(rgba, width, height) {
  if (width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM) {
    return { hash: "0".repeat(64), quality: 0 };
  }
  const luma = lumaFromRgba(rgba, width, height);
  let small = luma;
  if (width !== DOWNSAMPLE_DIMS || height !== DOWNSAMPLE_DIMS) {
    // A 64x64 picture (e.g. a video frame already downsampled) is used as it is.
    const scratch = new Float32Array(luma.length);
    jaroszFilter(luma, scratch, height, width, jaroszWindowSize(width), jaroszWindowSize(height));
    small = decimate(luma, height, width);
  }
  const quality = qualityMetric(small);
  return { hash: bitsToHex(dct64To16(small)), quality };
}
