"""Re-uploads that plain PDQ misses (flips, quarter turns, borders) match through the real API
and a real worker, because scans look up the upload-side views (hashsvc.signals.sides);
other photos still do not match, and the response reports only the upload's own hashes."""

from __future__ import annotations

import httpx
import pytest

from hashsvc.config import Settings
from hashsvc.hashing import hash_bytes
from tests.helpers import PHOTOS, bearer, reupload, upload, victim_hashes

HARD = ("hflip", "rotate90", "white_border_10pct")


def submit(client: httpx.Client, settings: Settings, name: str) -> None:
    response = client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS[name], settings)})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("variant", HARD)
def test_hard_reupload_matches_through_the_sync_scan(
    client: httpx.Client, settings: Settings, api_key: str, variant: str
) -> None:
    submit(client, settings, "chelsea")
    data = reupload("chelsea", variant)
    plain = {h.signal: h for h in hash_bytes(data, settings)}
    victim = {
        h["signal"]: bytes.fromhex(h["hash"]) for h in victim_hashes(PHOTOS["chelsea"], settings)
    }
    distance = sum(
        bin(a ^ b).count("1") for a, b in zip(plain["pdq"].code, victim["pdq"], strict=True)
    )
    assert distance > settings.pdq_threshold  # plain PDQ alone misses this re-upload

    scan = client.post("/v1/scan", files=upload(data), headers=bearer(api_key)).json()

    assert scan["matched"] is True
    assert len({m["flag_id"] for m in scan["matches"]}) == 1  # one case, one flag
    assert "pdq" in {m["signal"] for m in scan["matches"]}
    assert {(h["signal"], h["hash"]) for h in scan["hashes"]} == {
        (h.signal, h.hex) for h in plain.values()
    }  # the upload's own hashes only, as the CLI computes them


def test_other_photos_do_not_match_any_view(
    client: httpx.Client, settings: Settings, api_key: str
) -> None:
    submit(client, settings, "chelsea")
    for name in sorted(set(PHOTOS) - {"chelsea"}):
        for variant in HARD:
            scan = client.post(
                "/v1/scan", files=upload(reupload(name, variant)), headers=bearer(api_key)
            ).json()
            assert scan["matched"] is False, (name, variant)
