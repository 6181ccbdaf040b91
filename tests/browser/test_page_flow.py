"""The victim page end to end in Chromium against the real service: only JSON with hashes leaves
the page; submit, see the codes once, follow the case as a platform's scan matches, withdraw;
flat pictures refused in the page and by the server alike; keyboard use and both languages.
Screenshots of every main view are saved to tests/browser/artifacts/."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Route, expect

from fixtures.make_variants import encode, load_photo
from hashsvc.config import Settings
from hashsvc.signals import hash_all
from tests.browser.conftest import VIEWPORT, PageLog, WebPage
from tests.browser.hashes import hamming, python_crop_hashes, python_hashes
from tests.browser.media import (
    PHOTOS,
    flat_picture,
    gradient_picture,
    radial_gradient_image,
    two_photo_video,
    video_frames,
    write_video,
)
from tests.helpers import bearer, reupload, upload
from tests.live import start_service

HEX = frozenset("0123456789abcdef")
# Chromium and FFmpeg decode VP8 alike but convert YUV to RGB slightly differently.
FRAME_PDQ_DISTANCE = 8
FRAME_PHASH_DISTANCE = 2


def choose(page: Page, *paths: Path) -> None:
    """Pick files with the page's file input and wait until every one is processed."""
    page.set_input_files("#file-input", [str(path) for path in paths])
    expect(page.locator("#file-list > li")).to_have_count(len(paths))
    busy = page.locator(".file[data-state=queued], .file[data-state=working]")
    expect(busy).to_have_count(0, timeout=60_000)


def drop(page: Page, *paths: Path) -> None:
    """Drag and drop files onto the drop zone and wait until every one is processed."""
    files = [(path.name, base64.b64encode(path.read_bytes()).decode()) for path in paths]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, data] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
            }
            return transfer;
        }""",
        files,
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event("#dropzone", event, {"dataTransfer": transfer})
    expect(page.locator("#file-list > li")).to_have_count(len(paths))
    busy = page.locator(".file[data-state=queued], .file[data-state=working]")
    expect(busy).to_have_count(0, timeout=60_000)


def submit(page: Page) -> tuple[str, str]:
    """Send the fingerprints; returns the case id and secret the page shows."""
    page.get_by_role("button", name="Send the fingerprints").click()
    expect(page.get_by_role("heading", name="Your case is registered")).to_be_visible()
    case_id = page.locator("#created-case-id").inner_text()
    secret = page.locator("#created-secret").inner_text()
    assert case_id.startswith("case_")
    assert len(secret) > 30
    return case_id, secret


def scan(service_url: str, api_key: str, data: bytes) -> dict[str, Any]:
    response = httpx.post(
        f"{service_url}/v1/scan", files=upload(data), headers=bearer(api_key), timeout=30
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def check_hash_item(item: dict[str, Any]) -> None:
    assert set(item) <= {"signal", "hash", "quality"}, item
    length = {"pdq": 64, "phash": 16}[item["signal"]]
    assert len(item["hash"]) == length, item
    assert set(item["hash"]) <= HEX, item
    if item["signal"] == "pdq":
        assert isinstance(item["quality"], int)
        assert 50 <= item["quality"] <= 100


def test_submission_sends_only_json_hashes(
    web: WebPage, tmp_path: Path, artifacts: Path, platform_key: str
) -> None:
    video = two_photo_video(tmp_path / "holiday.webm", "coffee", "chelsea")
    files = [PHOTOS["astronaut"], PHOTOS["camera"], video]
    page = web.open()
    choose(page, *files)
    expect(page.locator(".file[data-state=ready]")).to_have_count(3)
    video_item = page.locator(".file[data-kind=video]")
    expect(video_item).to_contain_text("4 frames fingerprinted")
    # The frames at 0, 1, 2 and 3 s hash as the same frames decoded by FFmpeg in Python.
    codes = video_item.locator(".codes li").evaluate_all(
        "items => items.map(li => [...li.querySelectorAll('code')].map(c => c.textContent))"
    )
    for (pdq, phash), frame in zip(codes, video_frames(video, [0, 5, 10, 15]), strict=True):
        expected = hash_all(frame)
        assert hamming(pdq, expected["pdq"].code.hex()) <= FRAME_PDQ_DISTANCE
        assert hamming(phash, expected["phash"].code.hex()) <= FRAME_PHASH_DISTANCE
    page.screenshot(path=artifacts / "01-submit-files-and-video.png", full_page=True)
    loaded = len(web.log.requests)

    case_id, _secret = submit(page)

    during = web.log.requests[loaded:]
    with_body = [r for r in web.log.requests if r.post_data_buffer]
    assert [(r.method, r.url) for r in during] == [("POST", f"{web.service.url}/v1/cases")]
    assert with_body == during
    request = during[0]
    assert request.headers["content-type"] == "application/json"
    body = request.post_data_buffer
    assert body is not None
    payload = json.loads(body)
    assert set(payload) == {"hashes", "videos"}
    [video_item] = payload["videos"]  # the video's frames travel as one item
    items = payload["hashes"] + video_item["frames"]
    for item in items:
        check_hash_item(item)
    signals = [item["signal"] for item in items]
    # 2 pictures and 4 video frames (0 s, 1 s: coffee; 2 s, 3 s: chelsea), both hashes each;
    # a hash shared by two frames is sent once. Each picture (not the video's frames) adds the
    # PDQ hashes of its crops, after the full-picture hashes.
    crops = {name: python_crop_hashes(PHOTOS[name]) for name in ("astronaut", "camera")}
    n_crops = sum(len(c) for c in crops.values())
    assert n_crops >= 8
    assert [item["signal"] for item in payload["hashes"]].count("pdq") == 2 + n_crops
    assert [item["signal"] for item in payload["hashes"][:4]] == ["pdq", "phash"] * 2
    assert 4 + n_crops <= signals.count("pdq") <= 6 + n_crops, signals
    assert 4 <= signals.count("phash") <= 6, signals
    assert len(video_item["frames"]) <= 12  # no crop hashes for video frames
    sent = {(item["signal"], item["hash"]) for item in payload["hashes"]}
    for name in ("astronaut", "camera"):
        codes = {(signal, code) for signal, (code, _) in python_hashes(PHOTOS[name]).items()}
        codes |= {("pdq", code) for code, _ in crops[name].values()}
        assert codes <= sent, name
    for path in files:
        content = path.read_bytes()
        for start in (0, len(content) // 2, len(content) - 64):
            assert content[start : start + 64] not in body, path.name
    # Every request went to the service itself; nothing else carried a body.
    for r in web.log.requests:
        assert r.url.startswith((f"{web.service.url}/", "blob:", "data:")), r.url
        assert r.method == "GET" or r is request, (r.method, r.url)
    created = page.locator("#created-lead").inner_text()
    assert f"{len(signals)} fingerprints were received" in created
    # A platform's copy of the second photo of the video is matched through the frames.
    assert scan(web.service.url, platform_key, reupload("chelsea"))["matched"] is True
    assert case_id


def test_submit_follow_and_withdraw_from_the_page(
    web: WebPage, artifacts: Path, platform_key: str
) -> None:
    page = web.open()
    drop(page, PHOTOS["coffee"])
    expect(page.locator("#file-list > li")).to_have_attribute("data-state", "ready")
    case_id, secret = submit(page)
    page.screenshot(path=artifacts / "02-case-created.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "02b-case-created-phone.png", full_page=True)
    page.set_viewport_size(VIEWPORT)

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download as a text file").click()
    download = download_info.value
    assert download.suggested_filename == "hashsvc-case.txt"
    text = Path(download.path()).read_text()
    assert f"Case number: {case_id}" in text
    assert f"Secret code: {secret}" in text

    continue_button = page.get_by_role("button", name="See my case")
    expect(continue_button).to_be_disabled()
    page.get_by_label("I have saved my case number and my secret code").check()
    continue_button.click()
    expect(page.locator("#status-case-id")).to_have_text(case_id)
    pdq_count = 1 + len(python_crop_hashes(PHOTOS["coffee"]))
    expect(page.locator("#status-counts")).to_have_text(f"{pdq_count} PDQ, 1 pHash")
    expect(page.locator("#status-match-summary")).to_have_text(
        "No platform has found a match so far."
    )

    result = scan(web.service.url, platform_key, reupload("coffee", "resize_half"))
    assert result["matched"] is True
    page.get_by_role("button", name="Refresh").click()
    rows = page.locator("#match-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.locator("td").nth(0)).to_have_text("ExampleTube")
    expect(rows.locator("td").nth(2)).to_have_text("PDQ")
    expect(rows.locator("td").nth(4)).to_have_text("Waiting for the platform's review")
    page.screenshot(path=artifacts / "03-status-with-match.png", full_page=True)

    page.get_by_role("button", name="Withdraw my case").click()
    dialog = page.get_by_role("dialog", name="Withdraw this case?")
    expect(dialog).to_be_visible()
    page.screenshot(path=artifacts / "04-withdraw-confirmation.png")
    dialog.get_by_role("button", name="Yes, withdraw my case").click()
    notice = page.locator("#withdrawn-notice")
    expect(notice).to_contain_text("Your case was withdrawn")
    expect(page.locator("#status-result")).to_be_hidden()
    page.screenshot(path=artifacts / "05-withdrawn.png", full_page=True)

    after = scan(web.service.url, platform_key, reupload("coffee", "resize_half"))
    assert after["matched"] is False
    page.get_by_label("Case number", exact=True).fill(case_id)
    page.get_by_label("Secret code", exact=True).fill(secret)
    page.get_by_role("button", name="Show my case").click()
    expect(page.get_by_role("alert")).to_contain_text("No case matches this case number")


def test_a_cropped_copy_is_matched_through_the_crop_hashes(web: WebPage, platform_key: str) -> None:
    """The page sends the crop hashes of a picture: a copy with 10 % cut away (centred), or
    5 % off its right side, which the full-picture PDQ misses, is matched; a cropped copy of
    another photo is not."""
    page = web.open()
    choose(page, PHOTOS["coffee"])
    submit(page)
    coffee = load_photo(PHOTOS["coffee"]).convert("RGB")
    full = hash_all(coffee)["pdq"].code.hex()
    w, h = coffee.size
    for box in [
        (w // 20, h // 20, w - w // 20, h - h // 20),
        (0, h // 40, w - w // 20, h - h // 40),
    ]:
        cropped = coffee.crop(box)
        assert hamming(full, hash_all(cropped)["pdq"].code.hex()) > 31, box
        copy = encode(cropped, "JPEG", quality=85)
        assert scan(web.service.url, platform_key, copy)["matched"] is True, box
    chelsea = load_photo(PHOTOS["chelsea"]).convert("RGB")
    cw, ch = chelsea.size
    other = encode(chelsea.crop((cw // 20, ch // 20, cw - cw // 20, ch - ch // 20)), "JPEG")
    assert scan(web.service.url, platform_key, other)["matched"] is False


def test_flat_pictures_are_refused_in_the_page_and_by_the_server(
    web: WebPage, tmp_path: Path, artifacts: Path
) -> None:
    flat = flat_picture(tmp_path / "flat.png")
    page = web.open()
    choose(page, flat)
    item = page.locator("#file-list > li")
    expect(item).to_have_attribute("data-state", "refused")
    expect(item).to_contain_text("Not usable: this picture has too little detail")
    expect(page.get_by_role("button", name="Send the fingerprints")).to_be_disabled()
    page.screenshot(path=artifacts / "06-flat-picture-refused.png", full_page=True)

    # The server refuses the codes the page computed, for the same reason.
    codes = item.evaluate("li => ({ ...li.dataset })")
    assert int(codes["quality"]) < 50
    response = httpx.post(
        f"{web.service.url}/v1/cases",
        json={
            "hashes": [
                {"signal": "pdq", "hash": codes["pdq"], "quality": int(codes["quality"])},
                {"signal": "phash", "hash": codes["phash"]},
            ]
        },
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "low_information_hash"

    # A gradient passes the page's checks; the server, the final judge, refuses it and the
    # page says so and marks the file.
    item.get_by_role("button", name="Remove flat.png").click()
    choose(page, gradient_picture(tmp_path / "gradient.png"))
    page.get_by_role("button", name="Send the fingerprints").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("too little information")
    expect(alert).to_contain_text("The service answered: hashes[0]")
    expect(page.locator("#file-list > li")).to_have_attribute("data-state", "refused")
    page.screenshot(path=artifacts / "07-refused-by-the-server.png", full_page=True)


def test_keyboard_languages_and_labels(web: WebPage, artifacts: Path) -> None:
    page = web.open()
    # Every form control has a label; every image has a text alternative.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, button, select, textarea')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.textContent.trim())
            .map(el => el.id || el.outerHTML)"""
    )
    assert unlabelled == []

    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    french = page.get_by_role("button", name="Français")
    expect(french).to_be_focused()
    outline = french.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(french).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Empêcher la diffusion de vos images intimes"
    )
    expect(page.locator(".steps")).to_contain_text("Vos images restent sur cet appareil.")
    expect(page.locator(".steps")).to_contain_text("retirer votre dossier à tout moment")
    page.screenshot(path=artifacts / "08-french.png", full_page=True)
    texts = page.evaluate(
        """async () => {
            const { MESSAGES } = await import("/assets/i18n.js");
            const en = Object.keys(MESSAGES.en);
            const fr = Object.keys(MESSAGES.fr);
            const empty = [...document.querySelectorAll("[data-i18n]")]
                .filter((el) => !el.textContent.trim()).map((el) => el.dataset.i18n);
            return { onlyEn: en.filter((k) => !fr.includes(k)),
                     onlyFr: fr.filter((k) => !en.includes(k)), empty };
        }"""
    )
    assert texts == {"onlyEn": [], "onlyFr": [], "empty": []}

    # The file picker is reached by keyboard and shows its focus on the visible button.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file-input":
            break
    assert page.evaluate("document.activeElement.id") == "file-input"
    label_outline = page.locator("label[for=file-input]").evaluate(
        "el => getComputedStyle(el).outlineStyle"
    )
    assert label_outline != "none"
    page.screenshot(path=artifacts / "09-keyboard-focus-on-file-picker.png")

    # Status form by keyboard only, in French; the error is announced as an alert.
    page.get_by_role("link", name="Suivre ou retirer un dossier").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Suivre ou retirer votre dossier")
    page.get_by_label("Numéro de dossier", exact=True).focus()
    page.keyboard.type("case_AAAAAAAAAAAAAAAAAAAAAA")
    page.keyboard.press("Tab")
    page.keyboard.type("hsk_case_" + "n" * 43)  # well formed, opens nothing
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Aucun dossier ne correspond")
    page.screenshot(path=artifacts / "10-status-error-french.png", full_page=True)


def test_unreadable_and_unsupported_files_are_explained(web: WebPage, tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page = web.open()
    choose(page, corrupt, notes)
    broken = page.locator("#file-list > li").nth(0)
    expect(broken).to_have_attribute("data-state", "error")
    expect(broken).to_contain_text("This file could not be read on this device")
    text = page.locator("#file-list > li").nth(1)
    expect(text).to_have_attribute("data-state", "unsupported")
    expect(text).to_contain_text("This is not a picture or a video")
    expect(page.get_by_role("button", name="Send the fingerprints")).to_be_disabled()


def test_flat_video_frames_are_dropped_by_the_server(web: WebPage, tmp_path: Path) -> None:
    """A video travels as one item of frame hashes; the server leaves out its flat frames
    itself instead of refusing the case, so one request is enough."""
    pictures = [load_photo(PHOTOS["rocket"]), radial_gradient_image((480, 320))]
    video = write_video(tmp_path / "clip.webm", pictures)
    page = web.open()
    choose(page, video)
    item = page.locator("#file-list > li")
    expect(item).to_have_attribute("data-state", "ready")
    expect(item).to_contain_text("4 frames fingerprinted")
    submit(page)
    lead = page.locator("#created-lead")
    expect(lead).to_contain_text("received")
    posts = [r for r in web.log.requests if r.method == "POST"]
    assert len(posts) == 1
    body = json.loads(posts[0].post_data_buffer or b"")
    assert body["hashes"] == []
    [sent] = body["videos"]
    received = int(lead.inner_text().split()[0])
    assert 0 < received < len(sent["frames"])  # the gradient's frames were left out


def test_too_many_fingerprints_are_explained(
    browser: Browser, settings: Settings, redis_url: str
) -> None:
    """Over the server's per-case limit (1,000 by default; 3 here, so two pictures exceed it)
    the page explains in the visitor's language and shows the server's message."""
    small = start_service(settings.model_copy(update={"max_hashes_per_case": 3}), redis_url)
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    try:
        web = WebPage(context.new_page(), PageLog(), small)
        web.page.on("console", web.log.on_console)
        page = web.open()
        choose(page, PHOTOS["coffee"], PHOTOS["chelsea"])
        page.get_by_role("button", name="Send the fingerprints").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Too many fingerprints for one case")
        expect(alert).to_contain_text("4 hashes in one request; at most 3 are accepted")
        assert web.log.errors == []
    finally:
        context.close()
        small.stop()


def test_crop_hashes_fit_a_lower_per_case_limit(
    browser: Browser, settings: Settings, redis_url: str
) -> None:
    """A server that accepts 6 hashes per case: the page's first request (2 pictures, 4
    full-picture hashes and 12 crop hashes) is refused; the page sends again with the full
    hashes and as many crop hashes as fit (the first crop of each picture)."""
    small = start_service(settings.model_copy(update={"max_hashes_per_case": 6}), redis_url)
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    try:
        web = WebPage(context.new_page(), PageLog(), small)
        web.page.on("console", web.log.on_console)
        web.page.on("request", web.log.on_request)
        page = web.open()
        choose(page, PHOTOS["coffee"], PHOTOS["chelsea"])
        submit(page)
        expect(page.locator("#created-lead")).to_contain_text("6 fingerprints were received")
        posts = [
            json.loads(r.post_data_buffer or b"") for r in web.log.requests if r.method == "POST"
        ]
        assert [len(body["hashes"]) for body in posts] == [16, 6]
        first = {
            name: python_crop_hashes(PHOTOS[name])["crop-c95"][0] for name in ("coffee", "chelsea")
        }
        assert [item["hash"] for item in posts[1]["hashes"][4:]] == [
            first["coffee"],
            first["chelsea"],
        ]
        assert web.log.errors == []
    finally:
        context.close()
        small.stop()


def test_a_crop_hash_the_server_refuses_is_dropped(web: WebPage) -> None:
    """If the server refuses one of a picture's crop hashes as low in information (it also
    compares codes with synthetic flat pictures', which the page does not), the page sends
    the case again without that crop hash; the picture itself stays ready."""
    page = web.open()
    choose(page, PHOTOS["coffee"])
    refused: list[str] = []

    def refuse_first_crop(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        if not refused:
            refused.append(body["hashes"][2]["hash"])  # after the picture's PDQ and pHash
            route.fulfill(
                status=422,
                json={
                    "error": {
                        "code": "low_information_hash",
                        "message": "hashes[2]: this pdq hash carries too little information",
                    }
                },
            )
        else:
            route.continue_()

    page.route("**/v1/cases", refuse_first_crop)
    submit(page)
    posts = [json.loads(r.post_data_buffer or b"") for r in web.log.requests if r.method == "POST"]
    assert len(posts) == 2
    first, second = ([item["hash"] for item in body["hashes"]] for body in posts)
    assert refused == [first[2]]
    assert second == first[:2] + first[3:]
