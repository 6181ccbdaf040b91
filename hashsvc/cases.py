"""Victim use-cases: submit hashes as a case, read its status, withdraw it.

Validation lives here (signal names, hex form, low-information gate, limits), so the API and any
other front door apply the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hashsvc.config import Settings
from hashsvc.errors import BadRequest, CaseNotFound, InvalidHash, LowInformationHash, UnknownSignal
from hashsvc.models import CaseRecord, HashEntry
from hashsvc.security import is_case_id, new_case_id, new_case_secret, verifier, verify
from hashsvc.signals import get_signal
from hashsvc.store import Store

# Compared against when the case id is unknown, so both paths do the same work.
_DUMMY_VERIFIER = verifier("hashsvc-no-such-case")


@dataclass(frozen=True)
class SubmittedHash:
    """A hash as a client sends it: signal name, hex text, optional quality score."""

    signal: str
    hex: str
    quality: int | None = None


@dataclass(frozen=True)
class NewCase:
    case_id: str
    secret: str
    hash_count: int


def validate_hashes(
    items: Sequence[SubmittedHash],
    settings: Settings,
    *,
    check_information: bool,
    where: str = "hashes",
    skip_low_information: bool = False,
) -> list[HashEntry]:
    """Parse and check hashes; duplicates are dropped, order kept. With
    ``skip_low_information`` (video frames: fades and black frames are expected), low-information
    hashes are left out instead of refusing the request."""
    entries: dict[HashEntry, None] = {}
    for position, item in enumerate(items):
        try:
            signal = get_signal(item.signal)
            code = signal.parse_hex(item.hex)
            if check_information:
                signal.check_information(
                    code,
                    item.quality,
                    min_quality=settings.pdq_min_quality,
                    max_distance=settings.threshold_for(signal.name),
                )
        except LowInformationHash as exc:
            if skip_low_information:
                continue
            raise LowInformationHash(f"{where}[{position}]: {exc.message}") from exc
        except (UnknownSignal, InvalidHash) as exc:
            raise type(exc)(f"{where}[{position}]: {exc.message}") from exc
        entries[HashEntry(signal.name, code)] = None
    return list(entries)


def check_count(count: int, limit: int) -> None:
    if count == 0:
        raise BadRequest("the list of hashes is empty")
    if count > limit:
        raise BadRequest(f"{count} hashes submitted; at most {limit} are accepted at once")


def validate_submission(
    images: Sequence[SubmittedHash], videos: Sequence[Sequence[SubmittedHash]], settings: Settings
) -> list[HashEntry]:
    """A case's hashes: image hashes must all be usable; a video's low-information frames are
    dropped, but a video with no usable frame is refused."""
    check_count(len(images) + sum(len(v) for v in videos), settings.max_hashes_per_case)
    entries = validate_hashes(images, settings, check_information=True)
    for number, frames in enumerate(videos):
        where = f"videos[{number}].frames"
        usable = validate_hashes(
            frames, settings, check_information=True, where=where, skip_low_information=True
        )
        if frames and not usable:
            raise LowInformationHash(
                f"{where}: every frame of this video carries too little information "
                "(flat or nearly flat) to be matched safely"
            )
        entries += usable
    return list(dict.fromkeys(entries))


async def submit(
    images: Sequence[SubmittedHash],
    videos: Sequence[Sequence[SubmittedHash]],
    settings: Settings,
    store: Store,
) -> NewCase:
    """Create a case from validated hashes; the secret is returned here and never again."""
    entries = validate_submission(images, videos, settings)
    case_id, secret = new_case_id(), new_case_secret()
    pepper = settings.token_pepper.get_secret_value()
    await store.cases.create(case_id, verifier(secret, pepper), entries, videos=len(videos))
    return NewCase(case_id, secret, len(entries))


async def authorize(case_id: str, secret: str, settings: Settings, store: Store) -> CaseRecord:
    """The case if the secret opens it; unknown id and wrong secret fail identically."""
    record = await store.cases.get(case_id) if is_case_id(case_id) else None
    stored = record.secret_verifier if record else _DUMMY_VERIFIER
    opened = verify(secret, stored, settings.token_pepper.get_secret_value())
    if record is None or not opened:
        raise CaseNotFound()
    return record


async def withdraw(case: CaseRecord, store: Store) -> None:
    """Delete an authorized case and every trace of its hashes; they stop matching at once."""
    if not await store.cases.withdraw(case.case_id):
        raise CaseNotFound()  # withdrawn meanwhile by a concurrent request
