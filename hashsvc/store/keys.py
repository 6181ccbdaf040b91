"""Every Redis key hashsvc uses, under one versioned prefix. No other module spells a key."""

from __future__ import annotations

PREFIX = "hashsvc:v1:"

HASH_ID_SEQUENCE = PREFIX + "seq:hash"
BANK_OWNER = PREFIX + "bank:owner"  # HASH hash_id -> case_id
CHANGES = PREFIX + "changes"  # STREAM op, signal, hash_id, code
PLATFORMS = PREFIX + "platforms"  # SET of platform ids
PLATFORM_BY_VERIFIER = PREFIX + "platform:by-verifier"  # HASH key verifier -> platform id


def bank(signal: str) -> str:
    """HASH hash_id -> lowercase hex code, one per signal type."""
    return f"{PREFIX}bank:{signal}"


def case(case_id: str) -> str:
    """HASH secret_verifier, created_at, status."""
    return f"{PREFIX}case:{case_id}"


def case_hashes(case_id: str) -> str:
    """HASH hash_id -> signal: the case's hashes in the bank."""
    return f"{PREFIX}case:{case_id}:hashes"


def case_matches(case_id: str) -> str:
    """LIST of JSON match records, oldest first."""
    return f"{PREFIX}case:{case_id}:matches"


def match(match_ref: str) -> str:
    """HASH case_id, platform_id: resolves an opaque match reference."""
    return f"{PREFIX}match:{match_ref}"


def platform(platform_id: str) -> str:
    """HASH name, key_verifier, created_at."""
    return f"{PREFIX}platform:{platform_id}"
