// Video frames sampled in the page with a <video> element and a canvas: the first frame, then
// one frame per second, up to MAX_FRAMES. The video never leaves the device.

export const FRAME_INTERVAL_SECONDS = 1;
export const MAX_FRAMES = 60;
const EVENT_TIMEOUT_MS = 15000;

/** The times (seconds) at which frames are taken from a video of `duration` seconds. */
export function sampleTimes(duration) {
  const times = [0];
  if (!Number.isFinite(duration) || duration <= 0) {
    return times;
  }
  for (let t = FRAME_INTERVAL_SECONDS; t < duration; t += FRAME_INTERVAL_SECONDS) {
    if (times.length >= MAX_FRAMES) {
      break;
    }
    times.push(t);
  }
  return times;
}

function waitFor(target, event) {
  return new Promise((resolve, reject) => {
    const timeout = () => finish(new Error(`timed out waiting for ${event}`));
    const timer = setTimeout(timeout, EVENT_TIMEOUT_MS);
    function finish(error) {
      clearTimeout(timer);
      target.removeEventListener(event, onEvent);
      target.removeEventListener("error", onError);
      if (error) {
        reject(error);
      } else {
        resolve();
      }
    }
    function onEvent() {
      finish(null);
    }
    function onError() {
      finish(new Error("the video could not be decoded"));
    }
    target.addEventListener(event, onEvent);
    target.addEventListener("error", onError);
  });
}

async function seek(video, time) {
  const seeked = waitFor(video, "seeked");
  video.currentTime = time;
  await seeked;
}

/** Some recorded WebM files announce no duration until the end has been read. */
async function knownDuration(video) {
  if (Number.isFinite(video.duration)) {
    return video.duration;
  }
  await seek(video, 1e9).catch(() => undefined);
  const duration = video.duration;
  await seek(video, 0);
  return duration;
}

function grab(video, canvas) {
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(video, 0, 0, canvas.width, canvas.height);
  return context.getImageData(0, 0, canvas.width, canvas.height, { colorSpace: "srgb" });
}

/**
 * Sample frames of a video file. Calls `onFrame({ index, total, width, height, data })` for each
 * frame (RGBA pixels, an ArrayBuffer the callee may keep) and awaits it; returns a small
 * thumbnail Blob of the first frame.
 */
export async function sampleVideo(file, onFrame) {
  const url = URL.createObjectURL(file);
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  video.playsInline = true;
  try {
    const loaded = waitFor(video, "loadeddata");
    video.src = url;
    await loaded;
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) {
      throw new Error("the file has no video track");
    }
    const times = sampleTimes(await knownDuration(video));
    const canvas = new OffscreenCanvas(width, height);
    let thumbnail = null;
    for (const [index, time] of times.entries()) {
      if (index > 0 || video.currentTime !== 0) {
        await seek(video, time);
      }
      const pixels = grab(video, canvas);
      if (index === 0) {
        thumbnail = await thumbnailOf(canvas);
      }
      await onFrame({ index, total: times.length, width, height, data: pixels.data.buffer });
    }
    return thumbnail;
  } finally {
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(url);
  }
}

async function thumbnailOf(canvas) {
  const scale = Math.min(1, 240 / Math.max(canvas.width, canvas.height));
  const small = new OffscreenCanvas(
    Math.max(1, Math.round(canvas.width * scale)),
    Math.max(1, Math.round(canvas.height * scale)),
  );
  small.getContext("2d").drawImage(canvas, 0, 0, small.width, small.height);
  return small.convertToBlob({ type: "image/png" });
}
