// What the page sends: the hashes of every usable picture and video frame, nothing else.
//
// The frames of each video travel together as one item ({"videos": [{"frames": [...]}]}): the
// server counts it as one video and drops its low-information frames (fades, black frames)
// itself, instead of refusing the case. Pictures go as "hashes".

import { hashItems } from "./hashing.js";

export const GROUP_VIDEO_FRAMES = true;

/**
 * The POST /v1/cases body for the ready items, and for each hash sent, where it came from
 * (`sources[i] = { item, frame }`, to explain a refusal). Duplicate hashes are sent once.
 */
export function casePayload(items, { groupVideoFrames = GROUP_VIDEO_FRAMES } = {}) {
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
          sources.push({ item, frame: index });
        }
      }
    });
    if (grouped && target.length) {
      videos.push({ frames: target });
    }
  }
  const body = groupVideoFrames ? { hashes, videos } : { hashes };
  const count = hashes.length + videos.reduce((total, video) => total + video.frames.length, 0);
  return { body, sources, count };
}

/** The position N of a server message "hashes[N]: ...", or null. */
export function refusedPosition(message) {
  const found = /^hashes\[(\d+)\]/.exec(message || "");
  return found ? Number(found[1]) : null;
}
