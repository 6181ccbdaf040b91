// Discrete cosine transforms used by the two hashes.

let pdqMatrix = null;

/**
 * PDQ's 16x64 DCT matrix (row-major, single precision): row i is the DCT-II basis vector of
 * frequency i + 1 (the DC term is skipped), scaled by sqrt(2 / 64) taken in single precision
 * first, as the reference does.
 */
export function pdqDctMatrix() {
  if (pdqMatrix === null) {
    const scale = Math.fround(Math.sqrt(2 / 64));
    pdqMatrix = new Float32Array(16 * 64);
    for (let i = 0; i < 16; i += 1) {
      for (let j = 0; j < 64; j += 1) {
        pdqMatrix[i * 64 + j] = scale * Math.cos((Math.PI / 2 / 64) * (i + 1) * (2 * j + 1));
      }
    }
  }
  return pdqMatrix;
}

const cosTables = new Map();

function cosTable(n) {
  let table = cosTables.get(n);
  if (table === undefined) {
    table = new Float64Array(n * n);
    for (let k = 0; k < n; k += 1) {
      for (let i = 0; i < n; i += 1) {
        table[k * n + i] = Math.cos((Math.PI * k * (2 * i + 1)) / (2 * n));
      }
    }
    cosTables.set(n, table);
  }
  return table;
}

/**
 * The top-left `keep` x `keep` block of the unnormalised 2D DCT-II of an n x n matrix
 * (row-major), as scipy.fftpack.dct(dct(x, axis=0), axis=1) computes it:
 * y[k] = 2 * sum_i x[i] cos(pi k (2 i + 1) / (2 n)) along columns, then along rows.
 */
export function dct2dTopLeft(x, n, keep) {
  const c = cosTable(n);
  // Along axis 0 (down each column), keeping the first `keep` frequencies.
  const cols = new Float64Array(keep * n);
  for (let k = 0; k < keep; k += 1) {
    for (let j = 0; j < n; j += 1) {
      let sum = 0;
      for (let i = 0; i < n; i += 1) {
        sum += x[i * n + j] * c[k * n + i];
      }
      cols[k * n + j] = 2 * sum;
    }
  }
  // Along axis 1 (across each row).
  const out = new Float64Array(keep * keep);
  for (let r = 0; r < keep; r += 1) {
    for (let k = 0; k < keep; k += 1) {
      let sum = 0;
      for (let j = 0; j < n; j += 1) {
        sum += cols[r * n + j] * c[k * n + j];
      }
      out[r * keep + k] = 2 * sum;
    }
  }
  return out;
}
