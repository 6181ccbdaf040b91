// Greyscale conversion and Lanczos resampling of 8-bit pixels, reproducing Pillow's
// arithmetic (the server's pHash runs image.convert("L").resize(..., LANCZOS)):
// ITU-R 601-2 luma in 16-bit fixed point; a separable Lanczos filter with support 3, widened
// by the scale factor when shrinking, coefficients normalised to sum 1 and then rounded to
// 22-bit fixed point; two passes, each rounded and clamped to 0-255. The horizontal pass comes
// first unless the height shrinks by more than twice as many pixels as the width (Pillow 13;
// older Pillow always went horizontal first, which only differs for very tall pictures).

const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);
const LANCZOS_SUPPORT = 3;

/** 8-bit luma of RGBA pixels: (19595 R + 38470 G + 7471 B + 32768) >> 16. */
export function greyFromRgba(rgba, width, height) {
  const grey = new Uint8Array(width * height);
  for (let i = 0, p = 0; i < grey.length; i += 1, p += 4) {
    grey[i] = (rgba[p] * 19595 + rgba[p + 1] * 38470 + rgba[p + 2] * 7471 + 0x8000) >>> 16;
  }
  return grey;
}

function sinc(x) {
  if (x === 0) {
    return 1;
  }
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

function lanczos(x) {
  if (x >= -LANCZOS_SUPPORT && x < LANCZOS_SUPPORT) {
    return sinc(x) * sinc(x / 3);
  }
  return 0;
}

/**
 * Filter taps for resampling `inSize` samples to `outSize`: for each output sample its first
 * input index, its number of taps and the fixed-point weights (`ksize` slots per sample).
 */
export function lanczosCoefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = LANCZOS_SUPPORT * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const weights = new Int32Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  const taps = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx += 1) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x += 1) {
      const w = lanczos((x + xmin - center + 0.5) * ss);
      taps[x] = w;
      total += w;
    }
    for (let x = 0; x < xmax; x += 1) {
      const w = total !== 0 ? taps[x] / total : taps[x];
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, weights, bounds };
}

function clip8(sum) {
  const value = Math.floor(sum / ONE);
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

function resampleRows(src, width, height, outWidth) {
  const { ksize, weights, bounds } = lanczosCoefficients(width, outWidth);
  const out = new Uint8Array(outWidth * height);
  for (let y = 0; y < height; y += 1) {
    const row = y * width;
    for (let xx = 0; xx < outWidth; xx += 1) {
      const xmin = bounds[xx * 2];
      const xmax = bounds[xx * 2 + 1];
      const k = xx * ksize;
      let sum = HALF;
      for (let x = 0; x < xmax; x += 1) {
        sum += src[row + xmin + x] * weights[k + x];
      }
      out[y * outWidth + xx] = clip8(sum);
    }
  }
  return out;
}

function resampleColumns(src, width, height, outHeight) {
  const { ksize, weights, bounds } = lanczosCoefficients(height, outHeight);
  const out = new Uint8Array(width * outHeight);
  for (let yy = 0; yy < outHeight; yy += 1) {
    const ymin = bounds[yy * 2];
    const ymax = bounds[yy * 2 + 1];
    const k = yy * ksize;
    for (let x = 0; x < width; x += 1) {
      let sum = HALF;
      for (let y = 0; y < ymax; y += 1) {
        sum += src[(ymin + y) * width + x] * weights[k + y];
      }
      out[yy * width + x] = clip8(sum);
    }
  }
  return out;
}

/** Lanczos resize of 8-bit greyscale pixels to `outWidth` x `outHeight`, as Pillow does it. */
export function resizeLanczos(grey, width, height, outWidth, outHeight) {
  const shrinkY = height - outHeight;
  const verticalFirst = shrinkY > 0 && shrinkY > (width - outWidth) * 2;
  let pixels = grey;
  if (verticalFirst) {
    if (outHeight !== height) {
      pixels = resampleColumns(pixels, width, height, outHeight);
    }
    if (outWidth !== width) {
      pixels = resampleRows(pixels, width, outHeight, outWidth);
    }
    return pixels;
  }
  if (outWidth !== width) {
    pixels = resampleRows(pixels, width, height, outWidth);
  }
  if (outHeight !== height) {
    pixels = resampleColumns(pixels, outWidth, height, outHeight);
  }
  return pixels;
}
