"""Issued API keys (platform and operator keys), stored only as HMAC verifiers.

One hash maps a verifier to its credential, so authenticating a request is one lookup and
revoking a key (deleting its entry) takes effect in every process at the next request.
Each owner also keeps an index of its key ids, to list and revoke keys without the tokens.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from hashsvc.models import Credential, Scope
from hashsvc.store import keys
from hashsvc.store.client import text, text_map


def admin_index() -> str:
    """The key-id index of the operators' keys."""
    return keys.ADMIN_KEYS


def platform_index(platform_id: str) -> str:
    """The key-id index of a platform's keys."""
    return keys.platform_keys(platform_id)


def owner_index(credential: Credential) -> str:
    """The key-id index a credential belongs to."""
    return admin_index() if credential.kind == "admin" else platform_index(credential.owner)


def _encode(credential: Credential) -> str:
    return json.dumps(
        {
            "key_id": credential.key_id,
            "kind": credential.kind,
            "owner": credential.owner,
            "scopes": sorted(credential.scopes),
            "created_at": credential.created_at,
        }
    )


def _decode(raw: str) -> Credential:
    fields: dict[str, Any] = json.loads(raw)
    return Credential(
        key_id=fields["key_id"],
        kind=fields["kind"],
        owner=fields["owner"],
        scopes=frozenset(Scope(s) for s in fields["scopes"]),
        created_at=float(fields["created_at"]),
    )


def stage_issue(tx: Pipeline, key_verifier: str, credential: Credential) -> None:
    """Queue the writes that issue a key, inside the caller's transaction."""
    tx.hset(keys.CREDENTIALS, key_verifier, _encode(credential))
    tx.hset(owner_index(credential), credential.key_id, key_verifier)


class CredentialStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def issue(self, key_verifier: str, credential: Credential) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            stage_issue(tx, key_verifier, credential)
            await tx.execute()

    async def lookup(self, key_verifier: str) -> Credential | None:
        """The live credential with this verifier, or None (unknown or revoked)."""
        return self.parse(await self._redis.hget(keys.CREDENTIALS, key_verifier))

    @staticmethod
    def stage_lookup(pipe: Pipeline, key_verifier: str) -> None:
        """Queue ``lookup`` in the caller's pipeline; read its reply with ``parse``."""
        pipe.hget(keys.CREDENTIALS, key_verifier)

    @staticmethod
    def parse(found: object) -> Credential | None:
        """The credential of a lookup's reply (None: unknown or revoked)."""
        return _decode(text(found)) if found is not None else None

    async def of_owner(self, index_key: str) -> list[Credential]:
        """The live keys of one owner index (``owner_index``), oldest first."""
        verifiers = list(text_map(await self._redis.hgetall(index_key)).values())
        if not verifiers:
            return []
        raw = await self._redis.hmget(keys.CREDENTIALS, verifiers)
        found = [_decode(text(r)) for r in raw if r is not None]
        return sorted(found, key=lambda c: (c.created_at, c.key_id))

    async def revoke(self, index_key: str, key_id: str) -> bool:
        """Delete one key; False if the owner has no such key."""
        found = await self._redis.hget(index_key, key_id)
        if found is None:
            return False
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hdel(keys.CREDENTIALS, text(found))
            tx.hdel(index_key, key_id)
            await tx.execute()
        return True
