// The victim page: pick pictures and videos, fingerprint them on this device (in a worker),
// send only the fingerprints, show the case number and secret once, follow and withdraw.

import { ApiError, caseStatus, createCase, withdrawCase } from "./api.js";
import { formatTime, language, preferredLanguage, setLanguage, t } from "./i18n.js";
import { MAX_HASHES_PER_CASE, acceptedLimit, casePayload, refusedPosition } from "./payload.js";
import { MAX_FRAMES, sampleVideo } from "./video.js";

const $ = (id) => document.getElementById(id);

const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp|gif|bmp)$/i;
const VIDEO_EXTENSIONS = /\.(mp4|m4v|webm|mov|ogv)$/i;
const MAX_RESUBMITS = 20;

const state = {
  items: [],
  nextItemId: 1,
  queue: Promise.resolve(),
  pending: 0,
  processed: 0,
  frameProgress: null,
  sending: false,
  created: null,
  openCase: null,
  maxHashes: MAX_HASHES_PER_CASE, // lowered if the server says it accepts fewer
};

// ---------------------------------------------------------------- hashing worker

let worker = null;
let nextMessageId = 1;
const waiting = new Map();

function hashWorker() {
  if (worker === null) {
    worker = new Worker(new URL("./hash-worker.js", import.meta.url), { type: "module" });
    worker.addEventListener("message", (event) => {
      const resolve = waiting.get(event.data.id);
      waiting.delete(event.data.id);
      if (resolve) {
        resolve(event.data);
      }
    });
    worker.addEventListener("error", () => {
      for (const resolve of waiting.values()) {
        resolve({ ok: false, error: "hash" });
      }
      waiting.clear();
      worker = null;
    });
  }
  return worker;
}

/** Hash a picture file, or RGBA pixels `{ width, height, data }` (the buffer is transferred). */
function hashInWorker(message) {
  return new Promise((resolve) => {
    const id = nextMessageId;
    nextMessageId += 1;
    waiting.set(id, resolve);
    hashWorker().postMessage({ id, ...message }, message.data ? [message.data] : []);
  });
}

// ---------------------------------------------------------------- items

function kindOf(file) {
  if (file.type.startsWith("image/") || (!file.type && IMAGE_EXTENSIONS.test(file.name))) {
    return "image";
  }
  if (file.type.startsWith("video/") || VIDEO_EXTENSIONS.test(file.name)) {
    return "video";
  }
  return null;
}

function addFiles(files) {
  for (const file of files) {
    const item = {
      id: state.nextItemId,
      file,
      name: file.name,
      kind: kindOf(file),
      status: "queued",
      frames: [],
      skipped: 0,
      thumbnail: null,
      element: null,
    };
    state.nextItemId += 1;
    if (item.kind === null) {
      item.status = "unsupported";
    } else {
      if (item.kind === "image") {
        item.thumbnail = URL.createObjectURL(file);
      }
      state.pending += 1;
      state.queue = state.queue.then(() => processItem(item));
    }
    state.items.push(item);
    renderItem(item);
  }
  hideError("submit-error");
  renderProgress();
  renderSummary();
}

async function processItem(item) {
  if (!state.items.includes(item)) {
    finishItem();
    return;
  }
  item.status = "working";
  renderItem(item);
  try {
    if (item.kind === "image") {
      await processImage(item);
    } else {
      await processVideo(item);
    }
  } catch {
    item.status = "error";
  }
  item.file = null; // nothing of the file is kept once its fingerprints exist
  finishItem();
  renderItem(item);
}

function finishItem() {
  state.pending -= 1;
  state.processed += 1;
  state.frameProgress = null;
  renderProgress();
  renderSummary();
}

async function processImage(item) {
  const answer = await hashInWorker({ file: item.file });
  if (!answer.ok) {
    item.status = "error";
    URL.revokeObjectURL(item.thumbnail); // the browser cannot show it either
    item.thumbnail = null;
    return;
  }
  item.result = answer.result;
  if (answer.result.lowInformation) {
    item.status = "refused";
    return;
  }
  item.frames = [answer.result];
  item.status = "ready";
}

async function processVideo(item) {
  const thumbnail = await sampleVideo(item.file, async (frame) => {
    state.frameProgress = { name: item.name, done: frame.index + 1, total: frame.total };
    renderProgress();
    const { width, height, data } = frame;
    const answer = await hashInWorker({ width, height, data });
    if (!answer.ok) {
      throw new Error("a frame could not be hashed");
    }
    if (answer.result.lowInformation) {
      item.skipped += 1;
    } else {
      item.frames.push(answer.result);
    }
  });
  if (thumbnail && state.items.includes(item)) {
    item.thumbnail = URL.createObjectURL(thumbnail);
  }
  item.status = item.frames.length ? "ready" : "refused";
}

function removeItem(item) {
  const index = state.items.indexOf(item);
  if (index < 0) {
    return;
  }
  state.items.splice(index, 1);
  if (item.thumbnail) {
    URL.revokeObjectURL(item.thumbnail);
  }
  const next = item.element.nextElementSibling || item.element.previousElementSibling;
  item.element.remove();
  (next ? next.querySelector("button.remove") : $("file-input")).focus();
  renderProgress();
  renderSummary();
}

function clearItems() {
  for (const item of state.items) {
    if (item.thumbnail) {
      URL.revokeObjectURL(item.thumbnail);
    }
    item.element.remove();
  }
  state.items = [];
  state.processed = 0;
  renderProgress();
  renderSummary();
}

// ---------------------------------------------------------------- rendering: files

const STATUS_ICONS = {
  queued: "…",
  working: "⏳",
  ready: "✓",
  refused: "⚠",
  error: "✕",
  unsupported: "✕",
};

function statusText(item) {
  switch (item.status) {
    case "queued":
      return t("file.queued");
    case "working":
      return t("file.working");
    case "ready": {
      if (item.kind === "image") {
        return t("file.ready");
      }
      const ready = t("file.readyVideo", { count: item.frames.length });
      return item.skipped ? `${ready} ${t("file.skippedFrames", { count: item.skipped })}` : ready;
    }
    case "refused":
      return t(item.kind === "video" ? "file.lowInfoVideo" : "file.lowInfo");
    case "unsupported":
      return t("file.unsupported");
    default:
      return t("file.decodeError");
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function fingerprintDetails(item) {
  const details = element("details", "fingerprints");
  details.append(element("summary", "", t("file.show")));
  const list = element("ul", "codes");
  for (const frame of item.frames) {
    const entry = element("li");
    entry.append(
      element("span", "code-label", "PDQ"),
      " ",
      element("code", "", frame.pdq),
      ` (${t("file.quality", { quality: frame.quality })})`,
      element("br"),
      element("span", "code-label", "pHash"),
      " ",
      element("code", "", frame.phash),
    );
    for (const crop of frame.crops || []) {
      entry.append(
        element("br"),
        element("span", "code-label", t("file.crop")),
        " ",
        element("code", "", crop.pdq),
      );
    }
    list.append(entry);
  }
  details.append(list);
  return details;
}

function renderItem(item) {
  if (item.element === null) {
    item.element = element("li", "file");
    $("file-list").append(item.element);
  }
  const li = item.element;
  li.dataset.state = item.status;
  li.dataset.kind = item.kind || "other";
  if (item.result) {
    // The picture's codes, for people who want to check them (and for the tests).
    li.dataset.pdq = item.result.pdq;
    li.dataset.quality = String(item.result.quality);
    li.dataset.phash = item.result.phash;
    li.dataset.crops = JSON.stringify(item.result.crops || []);
  }
  li.replaceChildren();

  const thumb = element("div", "thumb");
  if (item.thumbnail) {
    const img = element("img");
    img.src = item.thumbnail;
    img.alt = "";
    thumb.append(img);
  } else {
    thumb.append(element("span", "thumb-placeholder", item.kind === "video" ? "▶" : "□"));
    thumb.firstChild.setAttribute("aria-hidden", "true");
  }
  li.append(thumb);

  const body = element("div", "file-body");
  const name = element("p", "file-name", item.name);
  if (item.kind === "video") {
    name.prepend(element("span", "tag", t("file.video")), " ");
  }
  const status = element("p", "file-status");
  const icon = element("span", "icon", STATUS_ICONS[item.status] || "");
  icon.setAttribute("aria-hidden", "true");
  status.append(icon, " ", statusText(item));
  body.append(name, status);
  if (item.status === "ready") {
    body.append(fingerprintDetails(item));
  }
  li.append(body);

  const remove = element("button", "button small remove", t("file.remove"));
  remove.type = "button";
  remove.setAttribute("aria-label", t("file.removeLabel", { name: item.name }));
  remove.addEventListener("click", () => removeItem(item));
  li.append(remove);
}

function renderProgress() {
  const total = state.processed + state.pending;
  const block = $("progress-block");
  block.hidden = total === 0;
  const progress = $("progress");
  progress.max = Math.max(total, 1);
  let value = state.processed;
  if (state.frameProgress) {
    value += state.frameProgress.done / state.frameProgress.total;
  }
  progress.value = value;
  let text = t("progress.text", { done: state.processed, total });
  if (state.frameProgress && state.pending) {
    text += ` ${t("progress.frames", state.frameProgress)}`;
  }
  $("progress-text").textContent = text;
  $("file-empty").hidden = state.items.length > 0;
}

function renderSummary() {
  const { count } = casePayload(state.items, { maxHashes: state.maxHashes });
  const files = state.items.filter((item) => item.status === "ready").length;
  const summary = $("send-summary");
  if (state.pending > 0) {
    summary.textContent = t("send.wait");
  } else if (count === 0) {
    summary.textContent = t("send.summaryNone");
  } else {
    summary.textContent = t("send.summary", { count, files });
  }
  $("submit-button").disabled = state.sending || state.pending > 0 || count === 0;
}

// ---------------------------------------------------------------- errors

function showError(id, lines) {
  const box = $(id);
  box.replaceChildren();
  const title = element("p");
  const icon = element("span", "icon", "⚠");
  icon.setAttribute("aria-hidden", "true");
  title.append(icon, " ", element("strong", "", t("error.title")));
  box.append(title);
  for (const line of lines) {
    box.append(element("p", "", line));
  }
  box.hidden = false;
}

function errorLines(error) {
  if (!(error instanceof ApiError)) {
    return [t("error.network")];
  }
  if (error.code === "network") {
    return [t("error.network")];
  }
  if (error.code === "case_not_found") {
    return [t("error.notFound")];
  }
  const explained = new Map([
    ["low_information_hash", "error.lowInfo"],
    ["too_many_hashes", "error.tooMany"],
  ]);
  const lines = explained.has(error.code) ? [t(explained.get(error.code))] : [];
  lines.push(t("error.server", { message: error.message }));
  return lines;
}

function hideError(id) {
  const box = $(id);
  box.hidden = true;
  box.replaceChildren();
}

// ---------------------------------------------------------------- submit

/** Send the fingerprints. A video frame the server finds too flat is dropped and the rest sent. */
async function submit() {
  if (state.sending) {
    return;
  }
  state.sending = true;
  renderSummary();
  hideError("submit-error");
  $("submit-status").textContent = t("send.sending");
  try {
    for (let attempt = 0; ; attempt += 1) {
      const { body, sources, count } = casePayload(state.items, { maxHashes: state.maxHashes });
      if (count === 0) {
        return;
      }
      try {
        const created = await createCase(body);
        showCreated(created);
        return;
      } catch (error) {
        const code = error instanceof ApiError ? error.code : null;
        // A server that accepts fewer hashes per case: send fewer crop hashes.
        const limit = code === "too_many_hashes" ? acceptedLimit(error.message) : null;
        if (limit !== null && limit < state.maxHashes && attempt < MAX_RESUBMITS) {
          state.maxHashes = limit;
          continue;
        }
        const refused = code === "low_information_hash"
          ? sources[refusedPosition(error.message)]
          : undefined;
        if (refused && refused.crop !== null && attempt < MAX_RESUBMITS) {
          refused.item.frames[0].crops.splice(refused.crop, 1); // an extra hash, not the picture
          continue;
        }
        if (refused && refused.item.kind === "video" && attempt < MAX_RESUBMITS) {
          dropFrame(refused.item, refused.frame);
          continue;
        }
        if (refused) {
          refused.item.status = "refused";
          renderItem(refused.item);
        }
        showError("submit-error", errorLines(error));
        return;
      }
    }
  } finally {
    state.sending = false;
    $("submit-status").textContent = "";
    renderSummary();
  }
}

function dropFrame(item, frame) {
  item.frames.splice(frame, 1);
  item.skipped += 1;
  if (!item.frames.length) {
    item.status = "refused";
  }
  renderItem(item);
}

function showCreated(created) {
  state.created = { caseId: created.case_id, secret: created.secret, count: created.hash_count };
  clearItems();
  $("saved-check").checked = false;
  $("continue-button").disabled = true;
  renderCreated();
  navigate("created");
}

function renderCreated() {
  if (!state.created) {
    return;
  }
  $("created-lead").textContent = t("created.lead", { count: state.created.count });
  $("created-case-id").textContent = state.created.caseId;
  $("created-secret").textContent = state.created.secret;
}

function downloadCredentials() {
  const { caseId, secret } = state.created;
  const url = `${location.origin}/`;
  const text = t("created.fileText", { caseId, secret, url });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
  link.download = t("created.fileName");
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

function continueToCase() {
  const { caseId, secret } = state.created;
  state.created = null;
  $("created-case-id").textContent = "";
  $("created-secret").textContent = "";
  $("case-id").value = caseId;
  $("case-secret").value = secret;
  navigate("status");
  loadStatus();
}

// ---------------------------------------------------------------- status and withdraw

const SIGNAL_NAMES = { pdq: "PDQ", phash: "pHash" };

function decisionText(match) {
  if (match.status === "withdrawn") {
    return t("decision.withdrawn");
  }
  const key = `decision.${match.decision}`;
  let text;
  try {
    text = t(key);
  } catch {
    text = match.decision;
  }
  if (match.decided_at && match.decision !== "pending") {
    return t("decision.on", { decision: text, date: formatTime(match.decided_at) });
  }
  return text;
}

function renderStatus() {
  const status = state.openCase && state.openCase.status;
  $("status-result").hidden = !status;
  if (!status) {
    return;
  }
  $("status-case-id").textContent = status.case_id;
  $("status-state").textContent = status.status === "active" ? t("status.active") : status.status;
  $("status-created").textContent = formatTime(status.created_at);
  $("status-counts").textContent = t("status.counts", {
    pdq: status.hashes.pdq || 0,
    phash: status.hashes.phash || 0,
  });
  $("status-videos-row").hidden = !status.videos;
  $("status-videos").textContent = String(status.videos || 0);
  const matches = status.matches || [];
  $("status-match-summary").textContent = matches.length
    ? t("status.matchCount", { count: matches.length })
    : t("status.noMatches");
  $("match-table").hidden = matches.length === 0;
  const rows = matches.map((match) => {
    const row = element("tr");
    row.dataset.decision = match.decision;
    row.append(
      element("td", "", match.platform),
      element("td", "", formatTime(match.matched_at)),
      element("td", "", SIGNAL_NAMES[match.signal] || match.signal),
      element("td", "", String(match.distance)),
      element("td", "", decisionText(match)),
    );
    return row;
  });
  $("match-rows").replaceChildren(...rows);
}

async function loadStatus({ refresh = false } = {}) {
  const caseId = refresh ? state.openCase.caseId : $("case-id").value.trim();
  const secret = refresh ? state.openCase.secret : $("case-secret").value.trim();
  hideError("status-error");
  $("withdrawn-notice").hidden = true;
  if (!caseId || !secret) {
    showError("status-error", [t("error.missing")]);
    return;
  }
  $("status-progress").textContent = t("status.loading");
  try {
    const status = await caseStatus(caseId, secret);
    state.openCase = { caseId, secret, status };
    renderStatus();
    $("status-progress").textContent = refresh ? t("status.refreshed") : "";
    if (!refresh) {
      $("status-heading").focus();
    }
  } catch (error) {
    $("status-progress").textContent = "";
    state.openCase = null;
    renderStatus();
    showError("status-error", errorLines(error));
  }
}

async function withdraw() {
  const dialog = $("withdraw-dialog");
  dialog.close();
  const { caseId, secret } = state.openCase;
  hideError("status-error");
  try {
    await withdrawCase(caseId, secret);
  } catch (error) {
    showError("status-error", errorLines(error));
    return;
  }
  state.openCase = null;
  renderStatus();
  $("status-progress").textContent = "";
  $("case-id").value = "";
  $("case-secret").value = "";
  const notice = $("withdrawn-notice");
  notice.hidden = false;
  notice.setAttribute("tabindex", "-1");
  notice.focus();
}

// ---------------------------------------------------------------- views and language

const VIEWS = { submit: "view-submit", created: "view-created", status: "view-status" };

function routeFromHash() {
  return location.hash === "#/status" ? "status" : "submit";
}

/** Show a view. While a new case's codes are on screen, they stay there until saved. */
function navigate(view, { focus = true } = {}) {
  let target = view === "created" && !state.created ? "submit" : view;
  if (state.created) {
    target = "created";
  }
  for (const [name, id] of Object.entries(VIEWS)) {
    $(id).hidden = name !== target;
  }
  for (const link of document.querySelectorAll("nav a[data-route]")) {
    if (link.dataset.route === target) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  const hash = target === "status" ? "#/status" : "#/";
  if (location.hash !== hash && !(hash === "#/" && location.hash === "")) {
    history.pushState(null, "", hash);
  }
  if (focus) {
    $(VIEWS[target]).querySelector("h1").focus();
  }
}

function applyLanguage(lang) {
  setLanguage(lang);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === language()));
  }
  $("pick-hint").textContent = t("pick.hint", { max: MAX_FRAMES });
  for (const item of state.items) {
    renderItem(item);
  }
  renderProgress();
  renderSummary();
  renderCreated();
  renderStatus();
}

// ---------------------------------------------------------------- wiring

function wireDropzone() {
  const zone = $("dropzone");
  // A file dropped outside the zone must not make the browser open it (and leave this page).
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => event.preventDefault());
  }
  zone.addEventListener("dragenter", () => zone.classList.add("dragging"));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) {
      zone.classList.remove("dragging");
    }
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    addFiles(Array.from(event.dataTransfer.files));
  });
  $("file-input").addEventListener("change", (event) => {
    addFiles(Array.from(event.target.files));
    event.target.value = "";
  });
}

function wire() {
  wireDropzone();
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => applyLanguage(button.dataset.lang));
  }
  for (const link of document.querySelectorAll("nav a[data-route], a.brand")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      navigate(link.dataset.route || "submit");
    });
  }
  window.addEventListener("popstate", () => navigate(routeFromHash()));
  window.addEventListener("beforeunload", (event) => {
    if (state.created || state.pending || state.sending) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  $("submit-button").addEventListener("click", submit);
  $("download-button").addEventListener("click", downloadCredentials);
  $("saved-check").addEventListener("change", (event) => {
    $("continue-button").disabled = !event.target.checked;
  });
  $("continue-button").addEventListener("click", continueToCase);
  $("status-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadStatus();
  });
  $("show-secret").addEventListener("change", (event) => {
    $("case-secret").type = event.target.checked ? "text" : "password";
  });
  $("refresh-button").addEventListener("click", () => loadStatus({ refresh: true }));
  $("withdraw-button").addEventListener("click", () => $("withdraw-dialog").showModal());
  $("withdraw-cancel").addEventListener("click", () => $("withdraw-dialog").close());
  $("withdraw-confirm").addEventListener("click", withdraw);
}

wire();
hashWorker(); // loaded now, so that hashing works even if the connection drops later
applyLanguage(preferredLanguage());
navigate(routeFromHash(), { focus: false });
document.documentElement.dataset.ready = "true";
