"""The one settings object. The only module that reads the environment (prefix ``HASHSVC_``,
plus the conventional ``REDIS_URL``). Settings are built in composition roots (CLI, app
factory, worker main) and passed down; nothing is instantiated at import."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hashsvc.store.changes import DEFAULT_RETENTION

if TYPE_CHECKING:
    from hashsvc.media.video import VideoLimits

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Runtime configuration of the service, the CLI and the workers."""

    model_config = SettingsConfigDict(env_prefix="HASHSVC_", extra="ignore", frozen=True)

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "HASHSVC_REDIS_URL"),
        description="External Redis; unset means an embedded private Redis in data_dir.",
    )
    data_dir: Path = Field(default=Path("var"), description="Embedded Redis data directory.")
    production: bool = Field(
        default=False,
        description="Refuse to run on a Redis without append-only persistence (and other "
        "safety checks); development mode only warns.",
    )
    appendfsync: Literal["always", "everysec", "no"] = "always"

    token_pepper: SecretStr = Field(
        default=SecretStr(""), description="Optional key mixed into stored secret verifiers."
    )

    server_url: str = Field(
        default="http://127.0.0.1:8000", description="Where CLI clients find the API."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    pdq_threshold: int = Field(default=31, ge=0, le=128)
    phash_threshold: int = Field(default=10, ge=0, le=32)
    pdq_min_quality: int = Field(default=50, ge=0, le=100)
    pdq_corroboration_distance: int = Field(
        default=63,
        ge=0,
        le=128,
        description="A pHash-only hit counts when the same case's PDQ is within this distance.",
    )

    max_upload_bytes: int = Field(default=20 * MiB, ge=1024)
    max_image_pixels: int = Field(default=50_000_000, ge=10_000)
    max_image_frames: int = Field(
        default=500,
        ge=1,
        description="Frames or pages an image file may declare (animated GIF, APNG, WebP, "
        "multi-page TIFF); only the first is decoded, the count is read from headers.",
    )
    max_request_json_bytes: int = Field(default=1 * MiB, ge=1024)
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A request body must arrive within this time (plus 1 s per "
        "body_min_bytes_per_s received), else 408 and the connection is closed.",
    )
    body_min_bytes_per_s: int = Field(default=64 * 1024, ge=1)
    max_hashes_per_case: int = Field(
        default=1000,
        ge=1,
        description="Hashes in one case submission, pictures' hashes and video frames' hashes "
        "counted together (the web page sends at most 120 per video).",
    )
    max_hashes_per_scan: int = Field(default=500, ge=1)
    change_stream_retention: int = Field(
        default=DEFAULT_RETENTION,
        ge=10,
        description="Bank changes kept for index replicas; one further behind rebuilds.",
    )

    # Quotas (shared by every process through Redis); over them: 429 + Retry-After.
    scan_rate_per_s: float = Field(
        default=100.0, gt=0, description="Sustained scans and job uploads per platform."
    )
    scan_burst: int = Field(default=200, ge=1, description="Scans a platform may send at once.")
    case_create_per_min: float = Field(
        default=10.0, gt=0, description="Sustained case creations per client IP."
    )
    case_create_burst: int = Field(default=20, ge=1)
    auth_failures_per_min: float = Field(
        default=30.0,
        gt=0,
        description="Failed authentications per client IP; beyond, the IP is refused (429) "
        "before its credentials are even checked.",
    )
    auth_failure_burst: int = Field(default=30, ge=1)

    # Trust and safety (hashsvc.trust): the flood/poisoning breaker and the feedback loop.
    breaker_matches_per_window: int = Field(
        default=50,
        ge=1,
        description="A stored hash matched by this many distinct uploads (from at least "
        "breaker_platforms platforms) within breaker_window_s is quarantined.",
    )
    breaker_platforms: int = Field(default=3, ge=1)
    breaker_window_s: float = Field(default=60.0, gt=0)
    feedback_not_violating_platforms: int = Field(
        default=2,
        ge=1,
        description="A stored hash whose flags this many distinct platforms decided "
        "not_violating is quarantined.",
    )
    oracle_alert_matches: int = Field(
        default=200,
        ge=1,
        description="Matching hash-only scans of one platform within oracle_window_s that "
        "raise an oracle alert (audit log entry and metric).",
    )
    oracle_window_s: int = Field(default=3600, ge=1)

    max_job_upload_bytes: int = Field(default=100 * MiB, ge=1024)
    job_blob_ttl_s: int = Field(default=24 * 3600, ge=60, description="Upload kept at most.")
    max_job_backlog: int = Field(default=10_000, ge=1, description="Beyond: 503 + Retry-After.")
    job_max_deliveries: int = Field(default=3, ge=1, description="Then dead-lettered.")
    worker_visibility_timeout_s: float = Field(
        default=30.0, gt=0, description="A job idle this long is taken over by another worker."
    )
    worker_sweep_interval_s: float = Field(default=1.0, gt=0)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_attempts: int = Field(default=3, ge=1)
    webhook_allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description="Webhook hosts ('host' or 'host:port') exempt, in production mode, from the "
        "refusal of loopback, private, link-local and other non-public addresses (e.g. a "
        "receiver on the same machine). JSON list in HASHSVC_WEBHOOK_ALLOWED_HOSTS.",
    )

    max_video_bytes: int = Field(default=200 * MiB, ge=1024)
    max_video_duration_s: float = Field(
        default=600.0, gt=0, description="Video content beyond this is not decoded."
    )
    max_video_frames: int = Field(default=300, ge=1, description="Sampled frames per video.")
    max_video_frame_pixels: int = Field(default=4096 * 2160, ge=10_000)
    video_sample_interval_s: float = Field(default=1.0, gt=0)
    video_scene_threshold: float = Field(
        default=30.0,
        ge=0,
        le=255,
        description="Mean absolute grey-level change (0-255) of 64x64 thumbnails = scene cut.",
    )
    video_decode_timeout_s: float = Field(
        default=120.0, gt=0, description="Wall-clock budget for sampling one video."
    )
    video_min_matching_frames: int = Field(
        default=2, ge=1, description="Frames of a video that must match the same case."
    )

    sandbox_processes: int = Field(
        default=2, ge=1, description="Sandboxed decoder processes per API or worker process."
    )
    sandbox_memory_bytes: int = Field(
        default=2048 * MiB, ge=256 * MiB, description="Address-space limit of a decoder process."
    )
    # Above video_decode_timeout_s, so a long video stops with its own clear reason first.
    sandbox_cpu_s: int = Field(default=150, ge=1, description="CPU seconds per sandboxed decode.")
    sandbox_timeout_s: float = Field(
        default=180.0, gt=0, description="Wall-clock budget of one sandboxed decode and hash."
    )

    # Admission control per API process (hashsvc.api.overload): beyond, 503 + Retry-After.
    max_in_flight: int = Field(
        default=256,
        ge=1,
        description="Requests served at once by one API process (slow uploads included: "
        "they are cut by body_timeout_s).",
    )
    max_concurrent_decodes: int = Field(
        default=2,
        ge=1,
        description="Image uploads to POST /v1/scan decoded and hashed at once by one API "
        "process (as many as sandbox_processes: more only queue for a decoder, and under "
        "overload their wait is what breaks p99; bench_load L2).",
    )
    log_level: str = Field(
        default="INFO",
        pattern=r"(?i)^(debug|info|warning|error)$",
        description="JSON log lines on stderr at this level and above.",
    )

    @field_validator("redis_url")
    @classmethod
    def _empty_url_is_none(cls, value: str | None) -> str | None:
        return value or None

    def threshold_for(self, signal: str) -> int:
        """Default match distance (inclusive) for a signal type."""
        thresholds = {"pdq": self.pdq_threshold, "phash": self.phash_threshold}
        return thresholds[signal]

    def video_limits(self) -> VideoLimits:
        """The video sampling limits (``hashsvc.media.sample_frames``) of these settings."""
        from hashsvc.media.video import VideoLimits  # not at top: config must not import cv2

        return VideoLimits(
            max_bytes=self.max_video_bytes,
            max_duration_s=self.max_video_duration_s,
            max_frames=self.max_video_frames,
            max_pixels=self.max_video_frame_pixels,
            sample_interval_s=self.video_sample_interval_s,
            scene_change_threshold=self.video_scene_threshold,
            max_decode_s=self.video_decode_timeout_s,
        )


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags, tests) on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
