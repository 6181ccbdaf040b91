"""Victim use-cases: submit hashes as a case, read its status, withdraw it.

Validation lives here (signal names, hex form, low-information gate, limits), so the API and any
other front door apply the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hashsvc.config import Settings
from hashsvc.errors import (
    BadRequest,
    CaseNotFound,
    HashsvcError,
    InvalidHash,
    LowInformationHash,
    UnknownSignal,
)
from hashsvc.models import CaseRecord, HashEntry
from hashsvc.security import is_case_id, new_case_id, new_case_secret, verifier, verify
from hashsvc.signals import get_signal
from hashsvc.store import Store

if TYPE_CHECKING:
    from hashsvc.trust import Trust

# Compared against when the case id is unknown, so both paths do the same work.
_DUMMY_VERIFIER = verifier("hashsvc-no-such-case")


class TooManyHashes(HashsvcError):
    """More hashes in one request than the limit: a well-formed request with an unacceptable
    value (422), naming the limit."""

    code = "too_many_hashes"
    status = 422


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
    seen: dict[HashEntry, str] | None = None,
) -> list[HashEntry]:
    """Parse and check hashes, order kept. A hash repeated (codes compared, not hex text) is
    refused if ``seen`` is given (``hashes[3]: duplicate of hashes[1]``; ``seen`` maps each hash
    to where it was first given, and may be shared between calls), else left out. With
    ``skip_low_information`` (video frames: fades and black frames are expected),
    low-information hashes are left out instead of refusing the request."""
    entries: dict[HashEntry, None] = {}
    for position, item in enumerate(items):
        here = f"{where}[{position}]"
        try:
            signal = get_signal(item.signal)
            code = signal.parse_hex(item.hex)
            entry = HashEntry(signal.name, code)
            if seen is not None:
                if entry in seen:
                    raise InvalidHash(
                        f"duplicate of {seen[entry]}: each picture hash may be given once"
                    )
                seen[entry] = here
            elif entry in entries:
                continue
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
            raise LowInformationHash(f"{here}: {exc.message}") from exc
        except (UnknownSignal, InvalidHash) as exc:
            raise type(exc)(f"{here}: {exc.message}") from exc
        entries[entry] = None
    return list(entries)


def check_count(count: int, limit: int, *, what: str = "hashes") -> None:
    """Refuse an empty list (400) and more than ``limit`` items (422 naming the limit)."""
    if count == 0:
        raise BadRequest("the list of hashes is empty")
    if count > limit:
        raise TooManyHashes(f"{what}: {count} hashes in one request; at most {limit} are accepted")


def validate_submission(
    images: Sequence[SubmittedHash], videos: Sequence[Sequence[SubmittedHash]], settings: Settings
) -> list[HashEntry]:
    """A case's hashes: image hashes must all be usable; a video's low-information frames are
    dropped, but a video with no usable frame is refused. At most ``max_hashes_per_case`` items
    in all, pictures' hashes and video frames' hashes counted together, as sent (the page sends
    at most 120 per video: 60 frames, 2 signals). A picture hash given twice is refused; a
    video frame's hash that repeats an earlier one (a still scene sampled twice, a frame equal
    to a picture) is merged with it, as a video's flat frames are dropped."""
    check_count(
        len(images) + sum(len(v) for v in videos),
        settings.max_hashes_per_case,
        what="hashes and videos[].frames together",
    )
    entries = validate_hashes(images, settings, check_information=True, seen={})
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
    trust: Trust | None = None,
) -> NewCase:
    """Create a case from validated hashes; the secret is returned here and never again.
    With ``trust``, a hash of allow-listed content is refused (422, a neutral message)."""
    entries = validate_submission(images, videos, settings)
    if trust is not None:
        await trust.check_submission(entries, _places(images, videos, entries))
    case_id, secret = new_case_id(), new_case_secret()
    pepper = settings.token_pepper.get_secret_value()
    await store.cases.create(case_id, verifier(secret, pepper), entries, videos=len(videos))
    return NewCase(case_id, secret, len(entries))


def _places(
    images: Sequence[SubmittedHash],
    videos: Sequence[Sequence[SubmittedHash]],
    entries: Sequence[HashEntry],
) -> list[str]:
    """Where each validated entry was first given (``hashes[2]``, ``videos[0].frames[5]``)."""
    first: dict[tuple[str, str], str] = {}
    sent = [(f"hashes[{i}]", h) for i, h in enumerate(images)] + [
        (f"videos[{n}].frames[{i}]", h) for n, v in enumerate(videos) for i, h in enumerate(v)
    ]
    for place, item in sent:
        first.setdefault((item.signal, item.hex.lower()), place)
    return [first.get((e.signal, e.code.hex()), "hashes") for e in entries]


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
