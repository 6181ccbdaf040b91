"""Safe decoding of uploaded media (the only place untrusted media is parsed): images
(``decode_image``) and sampled video frames (``sample_frames``)."""

from __future__ import annotations

from hashsvc.media.images import ALLOWED_FORMATS, decode_image
from hashsvc.media.video import VideoFrame, VideoLimits, is_video, sample_frames

__all__ = [
    "ALLOWED_FORMATS",
    "VideoFrame",
    "VideoLimits",
    "decode_image",
    "is_video",
    "sample_frames",
]
