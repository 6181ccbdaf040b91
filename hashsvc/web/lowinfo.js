// The server's low-information rule, applied in the page so that flat or nearly flat pictures
// are refused before anything is sent. The server stays the final judge (it also compares
// codes with the hashes of synthetic flat, gradient and two-tone images).
// Keep in step with hashsvc/signals (PdqSignal, PHashSignal) and Settings.pdq_min_quality.

export const PDQ_MIN_QUALITY = 50;
export const SET_BITS = {
  pdq: { min: 120, max: 128, bits: 256 },
  phash: { min: 28, max: 32, bits: 64 },
};

/** Number of set bits of a hex code. */
export function popcount(hex) {
  let count = 0;
  for (const digit of hex) {
    let nibble = parseInt(digit, 16);
    while (nibble) {
      count += nibble & 1;
      nibble >>= 1;
    }
  }
  return count;
}

/** Hamming distance between two hex codes of the same length. */
export function hammingDistance(a, b) {
  if (a.length !== b.length) {
    throw new RangeError("codes of different lengths");
  }
  let distance = 0;
  for (let i = 0; i < a.length; i += 1) {
    let x = parseInt(a[i], 16) ^ parseInt(b[i], 16);
    while (x) {
      distance += x & 1;
      x >>= 1;
    }
  }
  return distance;
}

/**
 * Why a picture's hashes carry too little information, or null when they are usable:
 * `{ signal, reason: "quality" | "balance", value }`.
 */
export function lowInformation({ pdq, quality, phash }) {
  if (quality < PDQ_MIN_QUALITY) {
    return { signal: "pdq", reason: "quality", value: quality };
  }
  for (const [signal, code] of [["pdq", pdq], ["phash", phash]]) {
    const bounds = SET_BITS[signal];
    const setBits = popcount(code);
    if (setBits < bounds.min || setBits > bounds.max) {
      return { signal, reason: "balance", value: setBits };
    }
  }
  return null;
}
