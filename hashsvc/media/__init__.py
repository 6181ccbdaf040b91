"""Safe decoding of uploaded image bytes (the only place untrusted media is parsed)."""

from __future__ import annotations

from hashsvc.media.images import ALLOWED_FORMATS, decode_image

__all__ = ["ALLOWED_FORMATS", "decode_image"]
