"""White-box tests of hashsvc.index: MIH arithmetic, table layouts, ids, merging."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from hashsvc.index import HammingIndex, bitperm, mih, ranges, tables
from hashsvc.index.codes import pack
from hashsvc.index.ids import IdColumn
from hashsvc.index.segment import Segment
from hashsvc.index.sorting import argsort_ids

U8 = NDArray[np.uint8]


def bytes_of(words: NDArray[np.uint64]) -> U8:
    """Packed words (n, w) -> byte codes (n, 8 w)."""
    return np.ascontiguousarray(words.astype(">u8")).view(np.uint8).reshape(words.shape[0], -1)


def flip_in(word: int, sub: mih.Substring, count: int, rng: np.random.Generator) -> int:
    """``word`` with ``count`` (at most all) distinct bits of substring ``sub`` flipped."""
    for bit in rng.choice(sub.length, size=min(count, sub.length), replace=False):
        word ^= 1 << (sub.shift + int(bit))
    return word


def uncovered_bits(layout: tuple[mih.Substring, ...], word: int) -> list[int]:
    covered = {s.shift + b for s in layout if s.word == word for b in range(s.length)}
    return [b for b in range(64) if b not in covered]


def plant(
    query: NDArray[np.uint64],
    layout: tuple[mih.Substring, ...],
    split: tuple[int, ...],
    spare: int,
    rng: np.random.Generator,
) -> NDArray[np.uint64]:
    """A code at distance ``split[t]`` from ``query`` on substring t (+ ``spare`` elsewhere)."""
    words = [int(w) for w in query]
    for sub, count in zip(layout, split, strict=True):
        words[sub.word] = flip_in(words[sub.word], sub, count, rng)
    free = uncovered_bits(layout, 0)
    for bit in rng.choice(free, size=min(spare, len(free)), replace=False):
        words[0] ^= 1 << int(bit)
    return np.array(words, dtype=np.uint64)


def splits(m: int, r: int, rng: np.random.Generator, limit: int) -> list[tuple[int, ...]]:
    """Per-table distances adding up to at most r + 1: all of them for 3 tables, else a
    sample biased towards the probe-radius boundaries."""
    if m <= 3:
        return [s for s in itertools.product(range(r + 2), repeat=m) if sum(s) <= r + 1]
    q = r // m
    out = []
    for _ in range(limit):
        split = rng.choice([0, q, q + 1, q + 2], size=m).astype(int)
        while split.sum() > r + 1:
            split[rng.integers(m)] = 0
        out.append(tuple(int(x) for x in split))
    return out


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize(("bits", "r"), [(64, 3), (64, 8), (64, 10), (128, 9), (256, 31)])
def test_every_split_of_the_distance_across_tables_is_found(
    bits: int, r: int, adaptive: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables, "SKEW_LIMIT", -1.0 if adaptive else float("inf"))
    monkeypatch.setattr(bitperm, "MIN_GAIN", float("inf"))  # planted splits: natural layout
    rng = np.random.default_rng(200 + bits + r)
    n_words = bits // 64
    query = rng.integers(0, 2**63, size=n_words, dtype=np.uint64)
    background = rng.integers(0, 2**63, size=(600, n_words), dtype=np.uint64)
    n = 600 + (400 if n_words > 1 else 300)
    layout = mih.layout_for(n, n_words, 8)
    every = itertools.cycle(splits(len(layout), r, rng, 400))
    planted = [
        plant(query, layout, split, int(rng.integers(0, 2)), rng)
        for split in itertools.islice(every, n - 600)
    ]
    words = np.concatenate([background, np.stack(planted)])
    assert words.shape[0] == n
    index = HammingIndex(bits, min_table_size=8, search_path="mih")
    index.add(np.arange(n), bytes_of(words))
    index.compact()
    assert mih.layout_for(len(index), n_words, 8) == layout

    _, ids, dists = index.search(bytes_of(query[None, :]), r)

    full = np.bitwise_count(words ^ query).sum(axis=1)
    expected = sorted(
        zip(full[full <= r].tolist(), np.flatnonzero(full <= r).tolist(), strict=True)
    )
    assert list(zip(dists.tolist(), ids.tolist(), strict=True)) == expected
    assert len(expected) > 20


@pytest.mark.parametrize("m", [3, 4, 8, 12, 16])
def test_radii_satisfy_the_pigeonhole_bound(m: int) -> None:
    layout = tuple(mih.Substring(t // 3, 0, 21 - t % 2) for t in range(m))
    for r in range(0, 70):
        for weights in [tuple(1.0 for _ in range(m)), (0.1, *(2.0 for _ in range(m - 1)))]:
            radii = mih.radii(layout, 10**6, r, weights)
            assert sum(rho + 1 for rho in radii) == r + 1
            assert max(radii) - min(radii) <= 1


@pytest.mark.parametrize(("length", "radius"), [(1, 0), (5, 2), (8, 3), (10, 10), (12, 20)])
def test_flip_masks_are_exactly_the_hamming_ball(length: int, radius: int) -> None:
    masks = mih.flip_masks(length, radius)
    want = [v for v in range(1 << length) if v.bit_count() <= radius]
    assert sorted(masks.tolist()) == want
    assert masks.shape[0] == mih.volume(length, radius)
    assert not masks.flags.writeable


@pytest.mark.parametrize("n_words", [1, 2, 4])
@pytest.mark.parametrize("n", [2**15, 100_000, 2**19, 1_000_000, 4_000_000, 10_000_000])
def test_layout_keeps_memory_within_budget(n: int, n_words: int) -> None:
    layout = mih.layout_for(n, n_words)
    code_bytes = 8 * n_words * n
    entry = 8 if n_words == 1 else 4
    total = code_bytes + 8 * n + (len(layout) - 1) * entry * n
    total += sum(4 * ((1 << s.length) + 1) for s in layout)
    assert total <= 3.5 * code_bytes + 8 * n
    for word in range(n_words):
        subs = sorted((s.shift, s.length) for s in layout if s.word == word)
        assert all(a + la <= b for (a, la), (b, _) in itertools.pairwise(subs))
        assert subs[-1][0] + subs[-1][1] <= 64
        assert len(subs) in (3, 4)
    assert all(s.length <= math.log2(n) for s in layout)


def test_no_tables_below_the_minimum_size() -> None:
    assert mih.layout_for(mih.MIN_TABLE_SIZE - 1, 1) == ()
    assert mih.layout_for(10, 4, min_size=8) != ()


@pytest.mark.parametrize("bits", [64, 256])
def test_built_index_memory_within_budget(bits: int) -> None:
    rng = np.random.default_rng(301)
    n = 100_000
    index = HammingIndex(bits)
    index.add(np.arange(n) + 10**12, rng.integers(0, 256, size=(n, bits // 8), dtype=np.uint8))
    index.compact()
    assert index.nbytes <= 3.5 * n * bits // 8 + 8 * n


def test_id_column_compresses_small_spans_and_finds_ids() -> None:
    ids = np.array([2**62, 2**62 + 7, 2**62 - 3, 2**62 + 2**31], dtype=np.int64)
    column = IdColumn.build(ids)
    assert column.values.dtype == np.uint32
    assert column.take(np.arange(4)).tolist() == ids.tolist()
    needles = np.array([2**62 + 7, 5, -(2**63), 2**63 - 1, 2**62 - 3, 2**62 + 2**32], np.int64)
    assert column.find(needles).tolist() == [1, 2]


def test_id_column_falls_back_to_int64_for_wide_spans() -> None:
    ids = np.array([2**63 - 1, -(2**63), 0, 42], dtype=np.int64)
    column = IdColumn.build(ids)
    assert column.values.dtype == np.int64
    assert column.find(np.array([42, -(2**63), 7], np.int64)).tolist() == [1, 3]
    assert column.take(column.find(ids)).tolist() == sorted(ids.tolist(), key=ids.tolist().index)


@pytest.mark.parametrize(
    "ids",
    [
        np.arange(50, dtype=np.int64),
        np.random.default_rng(5).permutation(1000).astype(np.int64) - 500,
        np.array([2**62, -(2**62), 5, 5, 3], dtype=np.int64),
        np.array([], dtype=np.int64),
    ],
)
def test_argsort_ids_is_a_stable_argsort(ids: NDArray[np.int64]) -> None:
    np.testing.assert_array_equal(argsort_ids(ids), np.argsort(ids, kind="stable"))


def random_index(bits: int, n: int, seed: int, **kwargs: object) -> tuple[HammingIndex, U8]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, bits // 8), dtype=np.uint8)
    index = HammingIndex(bits, min_table_size=64, **kwargs)  # type: ignore[arg-type]
    index.add(np.arange(n), codes)
    index.compact()
    return index, codes


def test_removing_many_codes_compacts_the_tombstones() -> None:
    index, codes = random_index(64, 2000, 302, background=False)
    index.remove(np.arange(0, 2000, 3))
    main = index._state.main
    assert main.dead.shape[0] == 0  # more than an eighth were removed: compacted at once
    assert len(index) == 2000 - 667
    lims, ids, _ = index.search(codes[:6], 0)
    assert ids.tolist() == [1, 2, 4, 5]
    assert np.diff(lims).tolist() == [0, 1, 1, 0, 1, 1]


def test_a_failed_merge_leaves_the_index_searchable_and_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index, codes = random_index(64, 500, 303, background=False, merge_threshold=10**6)
    new = np.random.default_rng(304).integers(0, 256, size=(50, 8), dtype=np.uint8)
    index.add(np.arange(500, 550), new)
    original = Segment.merge
    monkeypatch.setattr(Segment, "merge", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(MemoryError):
        index.compact()
    assert len(index) == 550
    assert index.search(new[:3], 0)[1].tolist() == [500, 501, 502]
    monkeypatch.setattr(Segment, "merge", original)
    index.remove([501])
    index.compact()
    assert index._state.frozen.size == 0
    assert index._state.delta.size == 0
    assert len(index) == 549
    assert index.search(np.concatenate([new[:3], codes[:1]]), 0)[1].tolist() == [500, 502, 0]


def test_background_merges_keep_results_exact() -> None:
    index, codes = random_index(64, 3000, 305, merge_threshold=100)
    rng = np.random.default_rng(306)
    extra = rng.integers(0, 256, size=(1000, 8), dtype=np.uint8)
    for start in range(0, 1000, 50):
        index.add(np.arange(3000 + start, 3050 + start), extra[start : start + 50])
        index.remove([start])
        ids = index.search(extra[start : start + 50], 0)[1]
        assert ids.tolist() == list(range(3000 + start, 3050 + start))
    index.compact()
    assert len(index) == 4000 - 20
    assert index._state.main.size == 4000 - 20
    assert index.search(codes[:1], 0)[1].size == 0
    assert index.search(codes[1:2], 0)[1].tolist() == [1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"merge_threshold": 0}, "merge_threshold must be a positive integer"),
        ({"min_table_size": -1}, "min_table_size must be a positive integer"),
        ({"memory_budget": 0}, "memory_budget must be a positive integer"),
        ({"search_path": "fast"}, "search_path must be one of"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HammingIndex(64, **kwargs)  # type: ignore[arg-type]


def test_pack_matches_planted_words() -> None:
    words = np.array([[1, 2**63]], dtype=np.uint64)
    np.testing.assert_array_equal(pack(bytes_of(words)), words)


@settings(max_examples=80, deadline=None, database=None, derandomize=True)
@given(
    st.lists(st.tuples(st.integers(-(2**40), 2**40), st.integers(0, 7)), min_size=0, max_size=30)
)
def test_range_helpers_match_numpy(cells: list[tuple[int, int]]) -> None:
    starts = np.array([s for s, _ in cells], dtype=np.int64)
    counts = np.array([c for _, c in cells], dtype=np.int64)
    owner, entries = ranges.expand(starts, counts)
    want = [(i, s + k) for i, (s, c) in enumerate(cells) for k in range(c)]
    assert list(zip(owner.tolist(), entries.tolist(), strict=True)) == want
    values = np.array([s % 2**64 for s, _ in cells], dtype=np.uint64)
    nonzero = counts > 0
    ends = np.cumsum(counts[nonzero])
    got = ranges.repeat_runs(values[nonzero], ends)
    np.testing.assert_array_equal(got, np.repeat(values, counts))


def permute_by_bits(words: NDArray[np.uint64], source: NDArray[np.intp]) -> NDArray[np.uint64]:
    """Reference: bit j of word w of the result is bit source[w, j] of word w (row-major)."""
    out = np.zeros_like(words)
    for w in range(words.shape[1]):
        for j, b in enumerate(source[w].tolist()):
            out[:, w] |= ((words[:, w] >> np.uint64(b)) & np.uint64(1)) << np.uint64(j)
    return out


@pytest.mark.parametrize("n_words", [1, 2, 4])
@pytest.mark.parametrize("n", [1, 5, 9, 300, 70_000])
def test_bit_permutation_matches_bit_by_bit_reference(n_words: int, n: int) -> None:
    rng = np.random.default_rng(n * 10 + n_words)
    source = np.stack([rng.permutation(64) for _ in range(n_words)])
    perm = bitperm.BitPermutation.of(source)
    rows = rng.integers(0, 2**64 - 1, size=(n, n_words), dtype=np.uint64, endpoint=True)
    rows[0] = 0 if n < 5 else ~np.uint64(0)
    want = permute_by_bits(rows, perm.source)
    np.testing.assert_array_equal(perm.apply_rows(rows), want)
    np.testing.assert_array_equal(perm.apply(np.ascontiguousarray(rows.T)), want.T)
    np.testing.assert_array_equal(perm.inverse.apply_rows(want), rows)
    # distances are invariant, which is all the index relies on
    d = np.bitwise_count(rows[:, None, :1] ^ rows[None, :5, :1]).sum(axis=2)
    dp = np.bitwise_count(want[:, None, :1] ^ want[None, :5, :1]).sum(axis=2)
    np.testing.assert_array_equal(d, dp)


def test_bit_permutation_rejects_non_permutations() -> None:
    with pytest.raises(ValueError, match="permutations"):
        bitperm.BitPermutation.of(np.zeros((1, 64), dtype=np.intp))


def biased_words(n: int, rng: np.random.Generator) -> NDArray[np.uint64]:
    """(1, n) codes whose top 12 bits are almost constant and the rest fair."""
    words = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    ones = rng.random((n, 12)) < 0.02
    top = (ones.astype(np.uint64) << np.arange(52, 64, dtype=np.uint64)).sum(axis=1)
    out: NDArray[np.uint64] = ((words & np.uint64(2**52 - 1)) | top.astype(np.uint64))[None, :]
    return out


def test_balanced_permutation_spreads_low_information_bits() -> None:
    rng = np.random.default_rng(401)
    words = biased_words(200_000, rng)
    layout = mih.layout_for(words.shape[1], 1)
    perm = bitperm.balanced(words, layout)
    assert perm is not None
    info = bitperm.information(words)[0]
    natural = [info[s.shift : s.shift + s.length].sum() for s in layout]
    balanced = [info[perm.source[0, s.shift : s.shift + s.length]].sum() for s in layout]
    assert max(natural) - min(natural) > 8  # the 12 constant bits sit in substring 0
    assert max(balanced) - min(balanced) < 1
    covered = {int(b) for s in layout for b in perm.source[0, s.shift : s.shift + s.length]}
    uncovered = set(range(64)) - covered
    assert set(range(52, 64)) <= uncovered  # the least informative bits are left out
    uniform = rng.integers(0, 2**64 - 1, size=(1, 200_000), dtype=np.uint64, endpoint=True)
    assert bitperm.balanced(uniform, layout) is None


def test_permuted_main_segment_is_exact_and_kept_across_merges() -> None:
    rng = np.random.default_rng(402)
    first, total = 36_000, 44_000
    assert mih.layout_for(first, 1) == mih.layout_for(total, 1)  # so the merge keeps it
    words = biased_words(total, rng)[0]
    codes = bytes_of(words[:, None])
    index = HammingIndex(64, merge_threshold=3_000, background=False)
    index.add(np.arange(first), codes[:first])
    index.compact()
    main = index._state.main
    assert main.permutation is not None
    ids, stored = main.live()
    np.testing.assert_array_equal(stored[0], words[ids])  # live() undoes the permutation
    for start in range(first, total, 2_000):
        index.add(np.arange(start, start + 2_000), codes[start : start + 2_000])
    index.remove(np.arange(0, total, 7))
    index.compact()
    assert index._state.main.permutation is main.permutation
    alive = np.ones(total, dtype=np.bool_)
    alive[::7] = False
    queries = np.concatenate([words[::3_999], words[7::4_003] ^ np.uint64(0b1011)])
    lims, got_ids, got_d = index.search(bytes_of(queries[:, None]), 6)
    for i, q in enumerate(queries):
        d = np.bitwise_count(words ^ q)
        hit = np.flatnonzero((d <= 6) & alive)
        want = sorted(zip(d[hit].tolist(), hit.tolist(), strict=True))
        a, b = lims[i], lims[i + 1]
        assert list(zip(got_d[a:b].tolist(), got_ids[a:b].tolist(), strict=True)) == want
