"""Operator-facing trust and safety models: quarantine, stored-hash history, allow-list, stats.

Stored hashes are named by ``hash_ref`` (``h<bank id>``), shown only on /v1/admin: platforms
never see hash refs (their flags are opaque) and victims never see them. The owning case id is
shown to operators only, in a hash's history and the quarantine queue."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hashsvc.api.schemas.common import HashItem
from hashsvc.store.allowlist import AllowEntry
from hashsvc.store.quarantine import hash_ref
from hashsvc.trust import Quarantined


class BreakerWindow(BaseModel):
    uploads: int = Field(description="Distinct uploads that matched within the window.")
    platforms: int = Field(description="Distinct platforms among them.")


class HashOut(BaseModel):
    hash_ref: str
    case_id: str | None = Field(description="The owning case (operators only).")
    signal: str | None
    state: str = Field(description="active, quarantined or confirmed")
    reason: str | None = Field(description="What quarantined it: breaker, feedback, allowlist.")
    state_at: float | None
    quarantined_at: float | None
    matches: int = Field(description="Distinct uploads that matched it, in all.")
    held: int = Field(description="Of those, matched while quarantined: no flag raised.")
    first_match_at: float | None
    last_match_at: float | None
    matches_by_platform: dict[str, int]
    window: BreakerWindow
    decisions_by_platform: dict[str, dict[str, int]] = Field(
        description="Per platform id, the decisions on flags this hash raised."
    )

    @classmethod
    def of(cls, found: Quarantined) -> HashOut:
        t = found.trust
        return cls(
            hash_ref=hash_ref(t.hash_id),
            case_id=found.case_id,
            signal=found.signal,
            state=t.state,
            reason=t.reason,
            state_at=t.state_at,
            quarantined_at=t.quarantined_at,
            matches=t.matches,
            held=t.held,
            first_match_at=t.first_at,
            last_match_at=t.last_at,
            matches_by_platform=t.matches_by_platform,
            window=BreakerWindow(uploads=t.window_uploads, platforms=t.window_platforms),
            decisions_by_platform=t.decisions_by_platform,
        )


class QuarantinePage(BaseModel):
    hashes: list[HashOut]
    total: int
    next_offset: int | None = Field(description="Pass as 'offset' for the next page.")


class AllowListCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hashes: list[HashItem] = Field(min_length=1, max_length=1000)
    label: str = Field(default="", max_length=200, description="Why it is benign (for operators).")


class AllowEntryOut(BaseModel):
    entry_id: str
    signal: str
    hash: str
    added_at: float
    actor: str
    label: str

    @classmethod
    def of(cls, entry: AllowEntry) -> AllowEntryOut:
        return cls(
            entry_id=entry.entry_id,
            signal=entry.signal,
            hash=entry.code.hex(),
            added_at=entry.added_at,
            actor=entry.actor,
            label=entry.label,
        )


class AllowListAdded(BaseModel):
    entries: list[AllowEntryOut]
    quarantined: list[str] = Field(
        description="Hash refs of stored hashes within threshold of the new entries, now "
        "quarantined for an operator to confirm or release."
    )


class AllowList(BaseModel):
    entries: list[AllowEntryOut]


class BankStats(BaseModel):
    hashes: dict[str, int] = Field(description="Stored hashes per signal.")
    cases: int
    flags: dict[str, int] = Field(description="Flags per status (open, decided, withdrawn).")
    decisions: dict[str, int] = Field(description="Flags per decision.")
    quarantined: int
    allowlisted: dict[str, int] = Field(description="Allow-list entries per signal.")
