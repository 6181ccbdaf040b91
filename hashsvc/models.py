"""Value objects that cross layers (store, matching, API, CLI). Plain frozen dataclasses:
no pydantic, no Redis."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class HashEntry:
    """One hash of one signal type, in its canonical byte form."""

    signal: str
    code: bytes


@dataclass(frozen=True)
class StoredHash:
    """A hash held in the bank, with its numeric index id and owning case."""

    hash_id: int
    case_id: str
    signal: str
    code: bytes


class CaseStatus(StrEnum):
    ACTIVE = "active"
    UNDER_REVIEW = "under review"  # shown while one of the case's hashes is quarantined


class Decision(StrEnum):
    """What a platform did with a flag; ``pending`` until it reports."""

    PENDING = "pending"
    REMOVED = "removed"
    NOT_VIOLATING = "not_violating"
    NEEDS_MORE_INFO = "needs_more_info"


class FlagStatus(StrEnum):
    OPEN = "open"  # waiting for the platform's review
    DECIDED = "decided"
    WITHDRAWN = "withdrawn"  # the victim withdrew the case: nothing to act on any more


@dataclass(frozen=True)
class Flag:
    """A match for human review by the platform whose upload matched. Carries no case data
    beyond what the platform needs: an opaque id, how close, which signal."""

    flag_id: str
    platform_id: str
    platform_name: str
    signal: str
    distance: int
    matched_frames: int
    created_at: float
    job_id: str | None = None
    status: FlagStatus = FlagStatus.OPEN
    decision: Decision = Decision.PENDING
    decided_at: float | None = None
    hash_ids: tuple[int, ...] = ()  # the stored hashes that matched (server-side, like case_id)


@dataclass(frozen=True)
class CaseRecord:
    """A case as stored: the secret only as its verifier."""

    case_id: str
    secret_verifier: str
    created_at: float
    status: CaseStatus
    hash_counts: dict[str, int]
    videos: int


@dataclass(frozen=True)
class Platform:
    platform_id: str
    name: str
    created_at: float
    file_root: str | None = None  # workers may read file:// URIs under this directory
    webhook_url: str | None = None  # job results are POSTed here, signed
    disabled: bool = False  # every key of a disabled platform is refused


class Scope(StrEnum):
    """What a key may do. Platform keys: scan, review (their flags), feed (the hash feed);
    operator keys: admin."""

    SCAN = "scan"
    REVIEW = "review"
    FEED = "feed"
    ADMIN = "admin"


PLATFORM_SCOPES = frozenset({Scope.SCAN, Scope.REVIEW, Scope.FEED})
DEFAULT_PLATFORM_SCOPES = frozenset({Scope.SCAN, Scope.REVIEW})


@dataclass(frozen=True)
class Credential:
    """An issued API key, known only by its HMAC verifier and a public key id."""

    key_id: str
    kind: str  # "platform" or "admin" (hashsvc.security token kinds)
    owner: str  # the platform id, or the operator's name for an admin key
    scopes: frozenset[Scope]
    created_at: float


@dataclass(frozen=True)
class Match:
    """An index hit on a stored hash (internal: carries the case id, never sent to platforms)."""

    case_id: str
    hash_id: int
    signal: str
    distance: int


@dataclass(frozen=True)
class Change:
    """One entry of the bank's change stream, replayed by index replicas."""

    op: str  # "add" | "remove"
    signal: str
    hash_id: int
    code: bytes | None


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class ScanJob:
    """A queued scan of one upload or one file:// URI, owned by one platform."""

    job_id: str
    platform_id: str
    status: JobStatus
    source: str  # "upload" | "uri"
    uri: str | None
    created_at: float
    attempt: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    result: str | None = None  # JSON written by the worker that completed the job
