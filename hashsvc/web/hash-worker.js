// Hashing off the main thread, so the page stays responsive with large pictures.
// Messages in: { id, file } (a picture File or Blob: its hashes and its crop hashes) or
// { id, width, height, data } (RGBA pixels of a video frame, transferred: no crop hashes). Messages out: { id, ok: true, width, height, result } or
// { id, ok: false, error: "decode" | "hash" }.

import { decodePicture, hashPicture, hashPixels } from "./hashing.js";

self.addEventListener("message", async (event) => {
  const { id, file, width, height, data } = event.data;
  let pixels;
  try {
    pixels = file
      ? await decodePicture(file)
      : { width, height, data: new Uint8ClampedArray(data) };
  } catch {
    self.postMessage({ id, ok: false, error: "decode" });
    return;
  }
  try {
    const hasher = file ? hashPicture : hashPixels;
    const result = hasher(pixels.data, pixels.width, pixels.height);
    self.postMessage({ id, ok: true, width: pixels.width, height: pixels.height, result });
  } catch {
    self.postMessage({ id, ok: false, error: "hash" });
  }
});
