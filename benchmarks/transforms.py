"""The seeded re-upload transforms of ``bench_quality.py``: what happens to a picture between
a victim's device and a platform upload. Each transform takes an RGB picture and a seeded
``random.Random`` and returns a new RGB picture; Pillow only, so runs are reproducible.

``EVERYDAY`` families are the ones plain perceptual hashing is meant to survive (codecs,
scaling, colour, small overlays); the others (crops, rotations, flips, borders, padding,
screenshots, combinations) are what robust matching adds.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Fn = Callable[[Image.Image, random.Random], Image.Image]

EVERYDAY = frozenset(
    {"reencode", "resize", "aspect", "colour", "grayscale", "blur", "noise", "watermark",
     "caption", "sticker"}
)  # fmt: skip

_WORDS = ("when you", "finally see", "the weekend", "nobody:", "me at 3am", "LOL", "mood",
          "this is fine", "wait for it", "so true")  # fmt: skip


@dataclass(frozen=True)
class Transform:
    family: str
    name: str
    fn: Fn


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _webp(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _scale(image: Image.Image, fx: float, fy: float) -> Image.Image:
    w, h = image.size
    return image.resize((max(8, round(w * fx)), max(8, round(h * fy))), Image.Resampling.LANCZOS)


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((width, height), Image.Resampling.LANCZOS)
    return copy


def _crop(image: Image.Image, fraction: float, rng: random.Random, centre: bool) -> Image.Image:
    """Keep (1 - fraction) of width and height; centred, or at a random offset."""
    w, h = image.size
    cw, ch = round(w * (1 - fraction)), round(h * (1 - fraction))
    x = (w - cw) // 2 if centre else rng.randint(0, w - cw)
    y = (h - ch) // 2 if centre else rng.randint(0, h - ch)
    return image.crop((x, y, x + cw, y + ch))


def _rotate(image: Image.Image, rng: random.Random, low: float, high: float) -> Image.Image:
    angle = rng.uniform(low, high) * rng.choice((-1, 1))
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)


def _gamma(image: Image.Image, gamma: float) -> Image.Image:
    table = [round(255 * (i / 255) ** gamma) for i in range(256)] * 3
    return image.point(table)


def _noise(image: Image.Image, rng: random.Random, sigma: float) -> Image.Image:
    gen = np.random.default_rng(rng.randrange(2**32))
    pixels = np.asarray(image, dtype=np.float32) + gen.normal(
        0, sigma, (image.height, image.width, 3)
    )
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _outlined_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int) -> None:
    draw.text(xy, text, font=_font(size), fill="white", stroke_width=max(1, size // 12),
              stroke_fill="black", anchor="mt")  # fmt: skip


def _caption(image: Image.Image, rng: random.Random) -> Image.Image:
    """Meme text drawn over the picture, top and bottom."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    size = max(12, out.height // 9)
    _outlined_text(draw, (out.width // 2, size // 4), rng.choice(_WORDS).upper(), size)
    _outlined_text(
        draw, (out.width // 2, out.height - size - size // 4), rng.choice(_WORDS).upper(), size
    )
    return out


def _caption_band(image: Image.Image, rng: random.Random) -> Image.Image:
    """A white band above the picture with black text (the "meme caption" format)."""
    band = max(30, image.height // 5)
    out = Image.new("RGB", (image.width, image.height + band), "white")
    out.paste(image, (0, band))
    draw = ImageDraw.Draw(out)
    draw.text((image.width // 2, band // 2), " ".join(rng.sample(_WORDS, 2)), fill="black",
              font=_font(band // 3), anchor="mm")  # fmt: skip
    return out


def _watermark(image: Image.Image, rng: random.Random) -> Image.Image:
    out = image.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(10, out.width // 18)
    text = rng.choice(("@user_1234", "reposted via app", "example.com", "©2024 somebody"))
    draw.text((out.width - size // 2, out.height - size // 2), text, font=_font(size),
              fill=(255, 255, 255, 150), anchor="rb")  # fmt: skip
    return Image.alpha_composite(out, layer).convert("RGB")


def _sticker(image: Image.Image, rng: random.Random) -> Image.Image:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    for _ in range(2):
        r = max(8, round(min(out.size) * rng.uniform(0.06, 0.1)))
        x, y = rng.randint(r, out.width - r), rng.randint(r, out.height - r)
        colour = rng.choice(((255, 210, 0), (255, 80, 120), (80, 200, 255)))
        draw.ellipse(
            (x - r, y - r, x + r, y + r), fill=colour, outline="black", width=max(1, r // 10)
        )
        draw.ellipse((x - r // 3 - 2, y - r // 3, x - r // 3 + 2, y - r // 3 + 4), fill="black")
        draw.ellipse((x + r // 3 - 2, y - r // 3, x + r // 3 + 2, y - r // 3 + 4), fill="black")
        draw.arc(
            (x - r // 2, y - r // 3, x + r // 2, y + r // 2),
            20,
            160,
            fill="black",
            width=max(1, r // 10),
        )
    return out


def _border(image: Image.Image, fraction: float, colour: str) -> Image.Image:
    return ImageOps.expand(image, max(2, round(max(image.size) * fraction)), fill=colour)


def _letterbox(image: Image.Image) -> Image.Image:
    """Black bars to a 16:9 frame (landscape pictures) or 9:16 (portrait)."""
    w, h = image.size
    if w >= h:
        frame = (max(w, round(h * 16 / 9)), h) if w / h < 16 / 9 else (w, round(w * 9 / 16) + 2)
    else:
        frame = (w, max(h, round(w * 16 / 9))) if h / w < 16 / 9 else (round(h * 9 / 16) + 2, h)
    out = Image.new("RGB", frame, "black")
    out.paste(image, ((frame[0] - w) // 2, (frame[1] - h) // 2))
    return out


def _pad_square(image: Image.Image, rng: random.Random) -> Image.Image:
    side = max(image.size)
    out = Image.new("RGB", (side, side), rng.choice(("white", (240, 240, 240), "black")))
    out.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return out


def _text_lines(
    draw: ImageDraw.ImageDraw,
    x: int,
    y: int,
    width: int,
    lines: int,
    colour: tuple[int, int, int],
    rng: random.Random,
    size: int = 14,
) -> None:
    for i in range(lines):
        words = " ".join(rng.choice(_WORDS) for _ in range(max(1, width // 90)))
        draw.text((x, y + i * (size + 6)), words, fill=colour, font=_font(size))


def _phone(image: Image.Image, rng: random.Random) -> Image.Image:
    """The picture in a social app on a phone, screenshotted (540 x 1170)."""
    dark = rng.random() < 0.5
    bg, fg = ((0, 0, 0), (235, 235, 235)) if dark else ((255, 255, 255), (20, 20, 20))
    out = Image.new("RGB", (540, 1170), bg)
    draw = ImageDraw.Draw(out)
    draw.text((24, 12), f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}", fill=fg, font=_font(18))
    draw.rectangle((470, 16, 510, 30), outline=fg, width=2)
    draw.ellipse((16, 56, 60, 100), fill=(rng.randint(0, 255), 120, 200))
    draw.text((72, 66), "some_account", fill=fg, font=_font(18))
    picture = _fit(image, 540, 700)
    top = 112
    out.paste(picture, ((540 - picture.width) // 2, top))
    y = top + picture.height + 14
    for k in range(3):
        draw.ellipse((20 + 50 * k, y, 50 + 50 * k, y + 30), outline=fg, width=3)
    _text_lines(draw, 20, y + 46, 500, 3, fg, rng, 16)
    draw.rectangle((0, 1100, 540, 1170), fill=(20, 20, 20) if dark else (245, 245, 245))
    for k in range(5):
        draw.rectangle((40 + 100 * k, 1120, 70 + 100 * k, 1150), outline=fg, width=3)
    return out


def _desktop(image: Image.Image, rng: random.Random) -> Image.Image:
    """The picture on a web page in a desktop browser, screenshotted (1280 x 800)."""
    dark = rng.random() < 0.5
    page, fg = ((32, 33, 36), (220, 220, 220)) if dark else ((250, 250, 250), (30, 30, 30))
    out = Image.new("RGB", (1280, 800), page)
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, 1280, 38), fill=(222, 225, 230) if not dark else (53, 54, 58))
    draw.rectangle((10, 6, 250, 38), fill=page)
    draw.text((22, 14), "Photo - Site", fill=fg, font=_font(14))
    draw.rectangle((0, 38, 1280, 80), fill=page)
    draw.rounded_rectangle(
        (90, 45, 1190, 73), radius=14, fill=(241, 243, 244) if not dark else (48, 49, 52)
    )
    draw.text(
        (110, 52),
        "https://example.org/p/" + str(rng.randint(10**6, 10**7)),
        fill=fg,
        font=_font(14),
    )
    _text_lines(draw, 40, 110, 200, 12, fg, rng, 14)
    picture = _fit(image, rng.randint(560, 760), 560)
    x = 300 + rng.randint(0, 40)
    out.paste(picture, (x, 110))
    _text_lines(draw, x, 110 + picture.height + 16, picture.width, 3, fg, rng, 14)
    return out


def _chat(image: Image.Image, rng: random.Random) -> Image.Image:
    """The picture received in a messaging app on a larger phone (720 x 1600): coloured header,
    text bubbles, the picture in a bubble with rounded corners, an input bar; saved as JPEG."""
    dark = rng.random() < 0.5
    bg, fg = ((18, 18, 18), (230, 230, 230)) if dark else ((236, 229, 221), (25, 25, 25))
    accent = rng.choice(((7, 94, 84), (0, 136, 204), (88, 86, 214), (52, 199, 89)))
    bubble = (38, 45, 49) if dark else (255, 255, 255)
    out = Image.new("RGB", (720, 1600), bg)
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, 720, 170), fill=accent)
    draw.text((32, 18), f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}", fill="white",
              font=_font(24))  # fmt: skip
    draw.ellipse((90, 80, 160, 150), fill=(rng.randint(60, 255), 160, 120))
    draw.text((180, 98), rng.choice(("Alex", "Sam", "group chat", "Kim")), fill="white",
              font=_font(30))  # fmt: skip
    y = 200
    for _ in range(rng.randint(1, 3)):
        width = rng.randint(220, 560)
        draw.rounded_rectangle((24, y, 24 + width, y + 70), radius=18, fill=bubble)
        _text_lines(draw, 44, y + 12, width - 40, 2, fg, rng, 20)
        y += 90
    picture = _fit(image, 480, 600)
    pad = 8
    draw.rounded_rectangle((24, y, 24 + picture.width + 2 * pad, y + picture.height + 2 * pad),
                           radius=24, fill=bubble)  # fmt: skip
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, *picture.size), radius=18, fill=255)
    out.paste(picture, (24 + pad, y + pad), mask)
    y += picture.height + 2 * pad + 20
    if y < 1400:
        draw.rounded_rectangle((696 - 300, y, 696, y + 70), radius=18, fill=accent)
        _text_lines(draw, 696 - 280, y + 12, 260, 2, (255, 255, 255), rng, 20)
    draw.rectangle((0, 1490, 720, 1600), fill=bg)
    draw.rounded_rectangle((20, 1505, 600, 1580), radius=36, fill=bubble)
    draw.text((50, 1530), "Message", fill=(140, 140, 140), font=_font(24))
    draw.ellipse((620, 1505, 695, 1580), fill=accent)
    return _jpeg(out, 80)


def _combo_crop_jpeg_bright(image: Image.Image, rng: random.Random) -> Image.Image:
    cropped = _crop(image, 0.05, rng, centre=False)
    return _jpeg(ImageEnhance.Brightness(cropped).enhance(1.15), 70)


def _t(family: str, name: str, fn: Fn) -> Transform:
    return Transform(family, name, fn)


TRANSFORMS: tuple[Transform, ...] = (
    _t("reencode", "jpeg_q50", lambda im, r: _jpeg(im, 50)),
    _t("reencode", "webp_q70", lambda im, r: _webp(im, 70)),
    _t("resize", "half", lambda im, r: _scale(im, 0.5, 0.5)),
    _t("resize", "up_1.5", lambda im, r: _scale(im, 1.5, 1.5)),
    _t("aspect", "stretch_w115", lambda im, r: _scale(im, 1.15, 1.0)),
    _t("aspect", "squash_h85", lambda im, r: _scale(im, 1.0, 0.85)),
    _t("colour", "brightness_+20", lambda im, r: ImageEnhance.Brightness(im).enhance(1.2)),
    _t("colour", "contrast_-25", lambda im, r: ImageEnhance.Contrast(im).enhance(0.75)),
    _t("colour", "gamma_1.5", lambda im, r: _gamma(im, 1.5)),
    _t("colour", "saturation_+50", lambda im, r: ImageEnhance.Color(im).enhance(1.5)),
    _t("grayscale", "grayscale", lambda im, r: ImageOps.grayscale(im).convert("RGB")),
    _t("blur", "gauss_1.5", lambda im, r: im.filter(ImageFilter.GaussianBlur(1.5))),
    _t("noise", "gauss_8", lambda im, r: _noise(im, r, 8.0)),
    _t("watermark", "corner_text", _watermark),
    _t("caption", "meme_overlay", _caption),
    _t("sticker", "two_stickers", _sticker),
    _t("crop", "centre_5", lambda im, r: _crop(im, 0.05, r, centre=True)),
    _t("crop", "centre_10", lambda im, r: _crop(im, 0.10, r, centre=True)),
    _t("crop", "centre_20", lambda im, r: _crop(im, 0.20, r, centre=True)),
    _t("crop", "offset_5", lambda im, r: _crop(im, 0.05, r, centre=False)),
    _t("crop", "offset_10", lambda im, r: _crop(im, 0.10, r, centre=False)),
    _t("crop", "offset_20", lambda im, r: _crop(im, 0.20, r, centre=False)),
    _t("rotate", "small_2-4", lambda im, r: _rotate(im, r, 2, 4)),
    _t("rotate", "small_5-10", lambda im, r: _rotate(im, r, 5, 10)),
    _t("rotate90", "rot90", lambda im, r: im.transpose(Image.Transpose.ROTATE_90)),
    _t("rotate90", "rot180", lambda im, r: im.transpose(Image.Transpose.ROTATE_180)),
    _t("rotate90", "rot270", lambda im, r: im.transpose(Image.Transpose.ROTATE_270)),
    _t("flip", "horizontal", lambda im, r: ImageOps.mirror(im)),
    _t("flip", "vertical", lambda im, r: ImageOps.flip(im)),
    _t("border", "white_8", lambda im, r: _border(im, 0.08, "white")),
    _t("border", "black_8", lambda im, r: _border(im, 0.08, "black")),
    _t("border", "letterbox", lambda im, r: _letterbox(im)),
    _t("padding", "square", _pad_square),
    _t("caption_band", "meme_band", _caption_band),
    _t("screenshot", "phone", _phone),
    _t("screenshot", "desktop", _desktop),
    _t("screenshot", "chat", _chat),
    _t("combo", "crop5_jpeg_bright", _combo_crop_jpeg_bright),
    _t("combo", "flip_caption", lambda im, r: _caption(ImageOps.mirror(im), r)),
    _t("combo", "phone_jpeg70", lambda im, r: _jpeg(_phone(im, r), 70)),
    _t("combo", "border_half", lambda im, r: _scale(_border(im, 0.08, "white"), 0.5, 0.5)),
    _t(
        "combo",
        "rot90_crop5",
        lambda im, r: _crop(im.transpose(Image.Transpose.ROTATE_90), 0.05, r, centre=False),
    ),
)
