"""Property tests: HammingIndex against a plain Python brute-force oracle.

Every search path is exercised on small data: tables are built from 8 codes on (so MIH
probing, copy tables for 64-bit codes and position tables for longer ones all run), merges
happen every few adds, the path is forced to MIH or scan, or left to the cost model, and
main segments are stored bit-permuted (:mod:`hashsvc.index.bitperm`) or not.
Codes mix random bytes with adversarial ones: duplicates, all-zero, all-one, one-bit
neighbours and near neighbours of a few base codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashsvc.index import HammingIndex, bitperm, tables

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

BITS = st.sampled_from([64, 128, 256])
PATH = st.sampled_from(["auto", "mih", "scan"])
ADAPTIVE = st.booleans()
PERMUTED = st.booleans()


@contextmanager
def probing(adaptive: bool, permuted: bool = False) -> Iterator[None]:
    """Force adaptive (every table at q, per-query choice) or static probe plans, and
    balancing bit permutations of main segments always or never."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tables, "SKEW_LIMIT", -1.0 if adaptive else float("inf"))
        patch.setattr(bitperm, "MIN_GAIN", 0.0 if permuted else float("inf"))
        yield


def hamming(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def oracle(stored: dict[int, bytes], query: bytes, r: int) -> list[tuple[int, int]]:
    """All (distance, id) within r of query, sorted."""
    return sorted((d, i) for i, c in stored.items() if (d := hamming(c, query)) <= r)


def flip(code: bytes, positions: list[int]) -> bytes:
    value = int.from_bytes(code, "big")
    for p in positions:
        value ^= 1 << (p % (8 * len(code)))
    return value.to_bytes(len(code), "big")


@st.composite
def codes(draw: st.DrawFn, bits: int, bases: list[bytes]) -> bytes:
    """A code: random, all-zero, all-one, or a base with a few (often one) bits flipped."""
    nbytes = bits // 8
    kind = draw(st.sampled_from(["random", "zero", "one", "base", "neighbour", "near"]))
    if kind == "random":
        return draw(st.binary(min_size=nbytes, max_size=nbytes))
    if kind == "zero":
        return bytes(nbytes)
    if kind == "one":
        return b"\xff" * nbytes
    base = draw(st.sampled_from(bases))
    if kind == "base":
        return base
    flips = 1 if kind == "neighbour" else draw(st.integers(2, bits // 4))
    return flip(base, draw(st.lists(st.integers(0, bits - 1), min_size=flips, max_size=flips)))


@st.composite
def radii(draw: st.DrawFn, bits: int) -> int:
    return draw(st.one_of(st.integers(0, 12), st.integers(0, bits + 3), st.just(bits)))


@dataclass
class Scenario:
    bits: int
    stored: dict[int, bytes]
    queries: list[bytes]
    radius: int


@st.composite
def scenarios(draw: st.DrawFn, max_codes: int = 80) -> Scenario:
    bits = draw(BITS)
    bases = draw(
        st.lists(st.binary(min_size=bits // 8, max_size=bits // 8), min_size=1, max_size=3)
    )
    ids = draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=max_codes, unique=True))
    stored = {i: draw(codes(bits, bases)) for i in ids}
    queries = draw(st.lists(codes(bits, bases), max_size=6))
    return Scenario(bits, stored, queries, draw(radii(bits)))


def make_index(bits: int, path: str, threshold: int = 7) -> HammingIndex:
    return HammingIndex(
        bits, min_table_size=8, merge_threshold=threshold, background=False, search_path=path
    )


def as_arrays(stored: dict[int, bytes], nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter(stored, dtype=np.int64, count=len(stored))
    blob = b"".join(stored.values())
    return ids, np.frombuffer(blob, dtype=np.uint8).reshape(len(stored), nbytes)


def check_search(
    index: HammingIndex, stored: dict[int, bytes], queries: list[bytes], r: int
) -> None:
    nbytes = index.nbytes_per_code
    batch = np.frombuffer(b"".join(queries), dtype=np.uint8).reshape(len(queries), nbytes)
    lims, ids, dists = index.search(batch, r)
    assert lims.shape == (len(queries) + 1,)
    assert lims[0] == 0
    assert lims[-1] == ids.shape[0] == dists.shape[0]
    for i, query in enumerate(queries):
        got = list(
            zip(
                dists[lims[i] : lims[i + 1]].tolist(),
                ids[lims[i] : lims[i + 1]].tolist(),
                strict=True,
            )
        )
        assert got == oracle(stored, query, r), f"query {i}, r={r}"
    assert len(index) == len(stored)


@PROPERTY
@given(scenario=scenarios(), path=PATH, adaptive=ADAPTIVE, permuted=PERMUTED)
def test_bulk_add_then_search_matches_oracle(
    scenario: Scenario, path: str, adaptive: bool, permuted: bool
) -> None:
    index = make_index(scenario.bits, path)
    with probing(adaptive, permuted):
        if scenario.stored:
            index.add(*as_arrays(scenario.stored, scenario.bits // 8))
            index.compact()
        check_search(index, scenario.stored, scenario.queries, scenario.radius)


@PROPERTY
@given(
    scenario=scenarios(max_codes=40),
    path=PATH,
    adaptive=ADAPTIVE,
    permuted=PERMUTED,
    data=st.data(),
)
def test_one_at_a_time_adds_with_merges_match_oracle(
    scenario: Scenario, path: str, adaptive: bool, permuted: bool, data: st.DataObject
) -> None:
    index = make_index(scenario.bits, path, threshold=data.draw(st.integers(1, 12)))
    seen: dict[int, bytes] = {}
    with probing(adaptive, permuted):
        for i, code in scenario.stored.items():
            index.add([i], np.frombuffer(code, dtype=np.uint8)[None, :])
            seen[i] = code
        check_search(index, seen, scenario.queries, scenario.radius)


Op = tuple[str, list[int], list[bytes]]


@st.composite
def operations(draw: st.DrawFn, bits: int) -> list[Op]:
    """Interleaved adds (upserts), removes, searches and compactions over ids 0..29."""
    bases = draw(
        st.lists(st.binary(min_size=bits // 8, max_size=bits // 8), min_size=1, max_size=2)
    )
    ops: list[Op] = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["add", "add", "add", "remove", "search", "compact"]))
        ids = draw(st.lists(st.integers(0, 29), max_size=12, unique=True))
        count = len(ids) if kind == "add" else (draw(st.integers(0, 4)) if kind == "search" else 0)
        ops.append((kind, ids, [draw(codes(bits, bases)) for _ in range(count)]))
    return ops


@PROPERTY
@given(data=st.data(), bits=BITS, path=PATH, adaptive=ADAPTIVE, permuted=PERMUTED)
def test_interleaved_adds_removes_searches_match_oracle(
    data: st.DataObject, bits: int, path: str, adaptive: bool, permuted: bool
) -> None:
    with probing(adaptive, permuted):
        run_operations(data, bits, path)


def run_operations(data: st.DataObject, bits: int, path: str) -> None:
    index = make_index(bits, path, threshold=data.draw(st.integers(1, 10)))
    model: dict[int, bytes] = {}
    for kind, ids, payload in data.draw(operations(bits)):
        if kind == "add":
            codes_u8 = np.frombuffer(b"".join(payload), dtype=np.uint8).reshape(len(ids), bits // 8)
            index.add(np.asarray(ids, dtype=np.int64), codes_u8)
            model.update(zip(ids, payload, strict=True))
        elif kind == "remove":
            index.remove(np.asarray(ids, dtype=np.int64))
            for i in ids:
                model.pop(i, None)
        elif kind == "compact":
            index.compact()
        else:
            check_search(index, model, payload, data.draw(radii(bits)))
        assert len(index) == len(model)
    check_search(index, model, list(model.values())[:3], data.draw(radii(bits)))


@PROPERTY
@given(scenario=scenarios(max_codes=30))
def test_empty_query_batch_and_empty_index(scenario: Scenario) -> None:
    nbytes = scenario.bits // 8
    empty = make_index(scenario.bits, "auto")
    check_search(empty, {}, scenario.queries, scenario.radius)
    lims, ids, dists = empty.search(np.zeros((0, nbytes), np.uint8), scenario.radius)
    assert (lims.tolist(), ids.size, dists.size) == ([0], 0, 0)
