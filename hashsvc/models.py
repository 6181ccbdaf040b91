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


class Decision(StrEnum):
    """What a platform did with a match; ``pending`` until it reports."""

    PENDING = "pending"


@dataclass(frozen=True)
class MatchRecord:
    """A match as the victim sees it: which platform, when, how close, what was done."""

    match_ref: str
    platform: str
    matched_at: float
    signal: str
    distance: int
    decision: str = Decision.PENDING


@dataclass(frozen=True)
class CaseRecord:
    """A case as stored: the secret only as its verifier."""

    case_id: str
    secret_verifier: str
    created_at: float
    status: CaseStatus
    hash_counts: dict[str, int]
    matches: list[MatchRecord]


@dataclass(frozen=True)
class Platform:
    platform_id: str
    name: str
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
