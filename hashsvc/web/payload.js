// What the page sends: the hashes of every usable picture and video frame, nothing else.
//
// The frames of each video travel together as one item ({"videos": [{"frames": [...]}]}): the
// server counts it as one video and drops its low-information frames (fades, black frames)
// itself, instead of refusing the case. Pictures go as "hashes": first the full-picture hashes
// of every picture and frame, then the extra PDQ hashes of crops of still pictures (crops.js),
// as many as the per-case limit leaves room for (every picture's first crop, then its second...).

import { cropItems, hashItems } from "./hashing.js";

export const GROUP_VIDEO_FRAMES = true;
/** The server's default per-case limit (Settings.max_hashes_per_case). */
export const MAX_HASHES_PER_CASE = 1000;

/**
 * The POST /v1/cases body for the ready items, and for each hash sent, where it came from
 * (`sources[i] = { item, frame, crop }`, `crop` the index of a crop hash in the picture's
 * `crops` or null, to explain a refusal). Duplicate hashes are sent once. Crop hashes fill
 * what `maxHashes` leaves; the full-picture hashes are always all sent.
 */
export function casePayload(
  items,
  { groupVideoFrames = GROUP_VIDEO_FRAMES, maxHashes = MAX_HASHES_PER_CASE } = {},
) {
  const seen = new Set();
  const hashes = [];
  const sources = [];
  const videos = [];
  for (const item of items) {
    if (item.status !== "ready") {
      continue;
    }
    const grouped = groupVideoFrames && item.kind === "video";
    const target = grouped ? [] : hashes;
    item.frames.forEach((frame, index) => {
      for (const entry of hashItems(frame)) {
        const key = `${entry.signal}:${entry.hash}`;
        if (seen.has(key)) {
          continue;
        }
        seen.add(key);
        target.push(entry);
        if (!grouped) {
          sources.push({ item, frame: index, crop: null });
        }
      }
    });
    if (grouped && target.length) {
      videos.push({ frames: target });
    }
  }
  let count = hashes.length + videos.reduce((total, video) => total + video.frames.length, 0);
  const pictures = items.filter((item) => item.status === "ready" && item.kind === "image");
  const crops = pictures.map((item) => cropItems(item.frames[0]));
  const ranks = Math.max(0, ...crops.map((list) => list.length));
  for (let rank = 0; rank < ranks; rank += 1) {
    pictures.forEach((item, n) => {
      const entry = crops[n][rank];
      if (!entry || count >= maxHashes || seen.has(`pdq:${entry.hash}`)) {
        return;
      }
      seen.add(`pdq:${entry.hash}`);
      hashes.push(entry);
      sources.push({ item, frame: 0, crop: rank });
      count += 1;
    });
  }
  const body = groupVideoFrames ? { hashes, videos } : { hashes };
  return { body, sources, count };
}

/** The limit N of a server message "...: M hashes in one request; at most N are accepted". */
export function acceptedLimit(message) {
  const found = /at most (\d+) are accepted/.exec(message || "");
  return found ? Number(found[1]) : null;
}

/** The position N of a server message "hashes[N]: ...", or null. */
export function refusedPosition(message) {
  const found = /^hashes\[(\d+)\]/.exec(message || "");
  return found ? Number(found[1]) : null;
}
