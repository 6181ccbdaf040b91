"""The one settings object. The only module that reads the environment (prefix ``HASHSVC_``,
plus the conventional ``REDIS_URL``). Settings are built in composition roots (CLI, app
factory, worker main) and passed down; nothing is instantiated at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    max_request_json_bytes: int = Field(default=1 * MiB, ge=1024)
    max_hashes_per_case: int = Field(default=2000, ge=1)
    max_hashes_per_scan: int = Field(default=500, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _empty_url_is_none(cls, value: str | None) -> str | None:
        return value or None

    def threshold_for(self, signal: str) -> int:
        """Default match distance (inclusive) for a signal type."""
        thresholds = {"pdq": self.pdq_threshold, "phash": self.phash_threshold}
        return thresholds[signal]


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags, tests) on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
