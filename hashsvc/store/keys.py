"""Every Redis key hashsvc uses, under one versioned prefix. No other module spells a key."""

from __future__ import annotations

import hashlib

PREFIX = "hashsvc:v1:"

HASH_ID_SEQUENCE = PREFIX + "seq:hash"
BANK_OWNER = PREFIX + "bank:owner"  # HASH hash_id -> case_id
CHANGES = PREFIX + "changes"  # STREAM op, signal, id (hash ids only, never codes)
PLATFORMS = PREFIX + "platforms"  # SET of platform ids
CREDENTIALS = PREFIX + "credentials"  # HASH key verifier -> JSON of a Credential
ADMIN_KEYS = PREFIX + "admin:keys"  # HASH key id -> verifier of the operators' keys
AUDIT = PREFIX + "audit"  # STREAM time, actor, action, object, request_id (append-only)
JOBS = PREFIX + "jobs"  # STREAM job_id; entries are deleted once acknowledged
JOBS_GROUP = "workers"  # the consumer group of JOBS
DEAD_JOBS = PREFIX + "jobs:dead"  # STREAM job_id, error, deliveries
# Ledger counters, moved in the same atomic step as the job: accepted = done + failed + XLEN(JOBS)
JOBS_ACCEPTED = PREFIX + "jobs:count:accepted"
JOBS_DONE = PREFIX + "jobs:count:done"
JOBS_FAILED = PREFIX + "jobs:count:failed"
CASE_COUNT = PREFIX + "cases:count"  # STRING: live cases (moved with create and withdraw)
# Trust and safety (hashsvc.trust): quarantined stored hashes and the allow-list bank.
QUARANTINE = PREFIX + "trust:quarantine"  # ZSET hash_id -> time it was quarantined
ALLOWLIST_META = PREFIX + "allowlist:meta"  # HASH entry id -> JSON signal, added_at, label
ALLOWLIST_SEQUENCE = PREFIX + "allowlist:seq"  # entry ids
ALLOWLIST_VERSION = PREFIX + "allowlist:version"  # bumped by every change: caches reload
FEED_ID_KEY = PREFIX + "feed:id-key"  # STRING: random key of the partner feed's opaque hash ids

# A partner's replica of the bank (``hashsvc sync``), in the partner's own Redis.
REPLICA_PREFIX = "hashsvc-replica:v1:"


def bank(signal: str) -> str:
    """HASH hash_id -> lowercase hex code, one per signal type."""
    return f"{PREFIX}bank:{signal}"


def case(case_id: str) -> str:
    """HASH secret_verifier, created_at, status."""
    return f"{PREFIX}case:{case_id}"


def case_hashes(case_id: str) -> str:
    """HASH hash_id -> signal: the case's hashes in the bank."""
    return f"{PREFIX}case:{case_id}:hashes"


def case_flags(case_id: str) -> str:
    """ZSET of the flag ids raised on the case, scored by creation time."""
    return f"{PREFIX}case:{case_id}:flags"


def flag(flag_id: str) -> str:
    """HASH of one flag (see hashsvc.models.Flag) plus its case_id, never shown to platforms."""
    return f"{PREFIX}flag:{flag_id}"


def platform_flags(platform_id: str) -> str:
    """ZSET of a platform's flag ids, scored by creation time."""
    return f"{PREFIX}platform:{platform_id}:flags"


def flag_tally(platform_id: str) -> str:
    """HASH ``status:<status>`` and ``decision:<decision>`` -> count of a platform's flags,
    kept by the scripts that create, decide and withdraw flags."""
    return f"{PREFIX}platform:{platform_id}:flag_tally"


def job(job_id: str) -> str:
    """HASH of one scan job (see hashsvc.models.ScanJob)."""
    return f"{PREFIX}job:{job_id}"


def job_blob(job_id: str) -> str:
    """STRING: the uploaded bytes of a job, with a TTL, deleted when the job ends."""
    return f"{PREFIX}job:{job_id}:blob"


def platform(platform_id: str) -> str:
    """HASH name, created_at, file_root, webhook_url, webhook_secret, disabled."""
    return f"{PREFIX}platform:{platform_id}"


def platform_keys(platform_id: str) -> str:
    """HASH key id -> verifier of a platform's live keys."""
    return f"{PREFIX}platform:{platform_id}:keys"


def rate_limit(bucket: str, subject: str) -> str:
    """STRING: the GCRA arrival time (µs) of one subject in one bucket, with a TTL.
    The subject (platform id, client IP) is stored only as a truncated sha256."""
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"{PREFIX}ratelimit:{bucket}:{digest}"


def replica_state(prefix: str) -> str:
    """HASH server, cursor, snapshot, snapshot_page, snapshot_resume: where a replica stands."""
    return f"{prefix}state"


def replica_bank(prefix: str, signal: str) -> str:
    """HASH feed id -> lowercase hex code: a replica's copy of one signal's bank."""
    return f"{prefix}bank:{signal}"


def replica_staging(prefix: str, signal: str) -> str:
    """HASH feed id -> code: a snapshot being taken, swapped in for ``replica_bank`` when done."""
    return f"{prefix}staging:{signal}"


def replica_imported(prefix: str, signal: str) -> str:
    """HASH digest -> code: hashes imported from a file, kept apart from the synced bank."""
    return f"{prefix}imported:{signal}"


def trust_hash(hash_id: int | str) -> str:
    """HASH of one stored hash's trust state: state (absent = active, ``quarantined``,
    ``confirmed``), reason, state_at, matches, held, first_at, last_at, ``m:<platform id>``
    (matches per platform). Deleted with the hash."""
    return f"{PREFIX}trust:hash:{hash_id}"


def trust_uploads(hash_id: int | str) -> str:
    """ZSET upload id -> time: the breaker's sliding window of distinct uploads (TTL)."""
    return f"{PREFIX}trust:hash:{hash_id}:uploads"


def trust_platforms(hash_id: int | str) -> str:
    """ZSET platform id -> last match time: the breaker's window of platforms (TTL)."""
    return f"{PREFIX}trust:hash:{hash_id}:platforms"


def trust_votes(hash_id: int | str) -> str:
    """HASH flag id -> "<platform id> <decision>": platforms' decisions on the hash's flags."""
    return f"{PREFIX}trust:hash:{hash_id}:votes"


def trust_hash_keys(hash_id: int | str) -> list[str]:
    """Every trust key of one stored hash (deleted when its case is withdrawn)."""
    return [
        trust_hash(hash_id),
        trust_uploads(hash_id),
        trust_platforms(hash_id),
        trust_votes(hash_id),
    ]


def oracle_counter(platform_id: str, bucket: int) -> str:
    """STRING: matching hash-only scans of a platform in one fixed window (TTL)."""
    return f"{PREFIX}trust:oracle:{platform_id}:{bucket}"


def allowlist(signal: str) -> str:
    """HASH entry id -> lowercase hex code: the allow-list bank of one signal."""
    return f"{PREFIX}allowlist:{signal}"
