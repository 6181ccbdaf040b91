"""Tests for hashsvc.index: packing, brute-force search against a Python-int oracle, facade."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from numpy.typing import ArrayLike, NDArray

from hashsvc.index import HammingIndex, brute
from hashsvc.index.codes import pack, unpack

U8 = NDArray[np.uint8]
INT_DTYPES = (np.dtype(np.int64), np.dtype(np.int64), np.dtype(np.int32))


def zeros(shape: int | tuple[int, ...], dtype: type[np.generic] = np.uint8) -> NDArray[np.generic]:
    return np.zeros(shape, dtype=dtype)


def random_codes(rng: np.random.Generator, n: int, bits: int) -> U8:
    return rng.integers(0, 256, size=(n, bits // 8), dtype=np.uint8)


def codes_at_distance(code: U8, d: int, rng: np.random.Generator) -> U8:
    """Copy of ``code`` (shape (nbytes,)) with exactly ``d`` distinct bits flipped."""
    bits = np.unpackbits(code)
    flip = rng.choice(bits.size, size=d, replace=False)
    bits[flip] ^= 1
    return np.packbits(bits)


def hamming(a: bytes, b: bytes) -> int:
    return bin(int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).count("1")


def oracle(stored: dict[int, bytes], query: bytes, r: int) -> list[tuple[int, int]]:
    """All (distance, id) within r of query, sorted, computed with Python ints."""
    return sorted((d, i) for i, c in stored.items() if (d := hamming(c, query)) <= r)


def results(
    lims: NDArray[np.int64], ids: NDArray[np.int64], dists: NDArray[np.int32], i: int
) -> list[tuple[int, int]]:
    sl = slice(int(lims[i]), int(lims[i + 1]))
    return list(zip(dists[sl].tolist(), ids[sl].tolist(), strict=True))


def build_planted(
    rng: np.random.Generator, bits: int, r: int, n_queries: int
) -> tuple[NDArray[np.int64], U8, U8]:
    """Random codes plus, per query, codes at distances 0, r, r, r, r+1 and random in [0, r+2]."""
    queries = random_codes(rng, n_queries, bits)
    planted = [
        codes_at_distance(q, d, rng)
        for q in queries
        for d in [0, r, r, r, r + 1, *rng.integers(0, r + 3, size=4).tolist()]
    ]
    codes = np.concatenate([random_codes(rng, 200, bits), np.stack(planted)])
    n = codes.shape[0]
    ids = (rng.permutation(10 * n)[:n].astype(np.int64) - 5 * n) * 1_000_003  # unique, +/-
    return ids, codes, queries


def test_codes_at_distance_flips_exactly_d_bits() -> None:
    rng = np.random.default_rng(101)
    code = random_codes(rng, 1, 256)[0]
    for d in [0, 1, 31, 256]:
        assert hamming(code.tobytes(), codes_at_distance(code, d, rng).tobytes()) == d


def test_pack_words_are_big_endian_chunks_and_unpack_inverts() -> None:
    rng = np.random.default_rng(102)
    codes = random_codes(rng, 5, 256)
    words = pack(codes)
    assert words.dtype == np.uint64
    assert words.shape == (5, 4)
    for row, code in zip(words, codes, strict=True):
        raw = code.tobytes()
        assert [int(w) for w in row] == [
            int.from_bytes(raw[8 * k : 8 * k + 8], "big") for k in range(4)
        ]
    np.testing.assert_array_equal(unpack(words), codes)
    np.testing.assert_array_equal(unpack(np.asfortranarray(words)), codes)
    np.testing.assert_array_equal(pack(np.asfortranarray(codes)), words)


@pytest.mark.parametrize("shape", [(3, 12), (3,), (3, 0)])
def test_pack_rejects_bad_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"expected uint8 array of shape \(n, 8 \* k\)"):
        pack(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize(
    ("bits", "r"),
    [(64, 0), (64, 5), (64, 12), (64, 24), (256, 0), (256, 20), (256, 31), (256, 112)],
)
def test_search_matches_python_int_oracle(bits: int, r: int) -> None:
    rng = np.random.default_rng(1000 + bits + r)
    ids, codes, queries = build_planted(rng, bits, r, n_queries=4)
    index = HammingIndex(bits)
    index.add(ids, codes)
    stored = {int(i): c.tobytes() for i, c in zip(ids, codes, strict=True)}

    lims, got_ids, got_dists = index.search(queries, r)

    assert lims.shape == (queries.shape[0] + 1,)
    assert lims[0] == 0
    assert lims[-1] == got_ids.shape[0] == got_dists.shape[0]
    for i, query in enumerate(queries):
        expected = oracle(stored, query.tobytes(), r)
        assert results(lims, got_ids, got_dists, i) == expected
        assert sum(d == r for d, _ in expected) >= 3  # planted ties at exactly r
        assert not any(d == r + 1 for d, _ in results(lims, got_ids, got_dists, i))


def test_results_sorted_by_distance_then_id() -> None:
    rng = np.random.default_rng(103)
    query = random_codes(rng, 1, 256)
    near = codes_at_distance(query[0], 1, rng)
    far = codes_at_distance(query[0], 2, rng)
    index = HammingIndex(256)
    index.add([7, 5, -3, 9, -100, 1], np.stack([far, query[0], query[0], query[0], near, far]))

    lims, ids, dists = index.search(query, 2)

    assert ids.tolist() == [-3, 5, 9, -100, 1, 7]
    assert dists.tolist() == [0, 0, 0, 1, 2, 2]
    assert lims.tolist() == [0, 6]


@pytest.mark.parametrize(
    ("base", "step"),
    [(0, 1), (-(2**63), 1_000_003), (2**63 - 3_000 * 1_000_003, 1_000_003), (-(2**40), 2**22)],
)
@pytest.mark.parametrize("bits", [64, 256])
def test_many_results_sorted_by_query_distance_then_id(base: int, step: int, bits: int) -> None:
    """Enough hits for the packed-key sort; ids near the int64 limits or spanning > 2**32."""
    rng = np.random.default_rng(105)
    queries = random_codes(rng, 3, bits)
    codes = np.stack([codes_at_distance(queries[i % 3], i % 5, rng) for i in range(3_000)])
    ids = base + step * rng.permutation(3_000).astype(object)
    index = HammingIndex(bits)
    index.add(np.array(ids.tolist(), dtype=np.int64), codes)
    lims, got_ids, got_d = index.search(queries, bits // 4)
    stored = {int(i): c.tobytes() for i, c in zip(ids.tolist(), codes, strict=True)}
    for q in range(3):
        assert results(lims, got_ids, got_d, q) == oracle(stored, queries[q].tobytes(), bits // 4)
    assert lims[-1] >= 3_000


def test_output_dtypes() -> None:
    rng = np.random.default_rng(104)
    codes = random_codes(rng, 10, 64)
    index = HammingIndex(64)
    index.add(np.arange(10, dtype=np.int32), codes)
    lims, ids, dists = index.search(codes[:3], 64)
    assert (lims.dtype, ids.dtype, dists.dtype) == INT_DTYPES
    assert lims.tolist() == [0, 10, 20, 30]


def test_max_distance_above_bits_returns_everything() -> None:
    rng = np.random.default_rng(105)
    codes = random_codes(rng, 50, 64)
    index = HammingIndex(64)
    index.add(np.arange(50), codes)
    lims, ids, dists = index.search(codes[:1], 10_000_000)
    assert sorted(ids.tolist()) == list(range(50))
    assert lims.tolist() == [0, 50]
    assert dists.max() <= 64


@pytest.mark.parametrize("bits", [64, 256])
def test_complement_code_is_at_distance_bits(bits: int) -> None:
    rng = np.random.default_rng(117)
    code = random_codes(rng, 1, bits)
    index = HammingIndex(bits)
    index.add([1, 2], np.concatenate([~code, code]))
    assert index.search(code, 0)[1].tolist() == [2]
    assert index.search(code, bits - 1)[1].tolist() == [2]
    lims, ids, dists = index.search(code, bits)
    assert (lims.tolist(), ids.tolist(), dists.tolist()) == ([0, 2], [2, 1], [0, bits])


def test_remove_and_len() -> None:
    rng = np.random.default_rng(106)
    codes = random_codes(rng, 20, 256)
    index = HammingIndex(256)
    index.add(np.arange(20), codes)
    assert len(index) == 20

    index.remove(np.array([3, 4, 4, 12345], dtype=np.int64))

    assert len(index) == 18
    lims, ids, _ = index.search(codes, 0)
    assert np.diff(lims).tolist() == [0 if i in (3, 4) else 1 for i in range(20)]
    assert 3 not in ids.tolist()
    assert 4 not in ids.tolist()


def test_remove_unknown_ids_is_noop() -> None:
    rng = np.random.default_rng(107)
    codes = random_codes(rng, 5, 64)
    index = HammingIndex(64)
    index.remove([1, 2])
    assert len(index) == 0
    index.add(np.arange(5), codes)
    index.remove([99, -1])
    index.remove(np.array([], dtype=np.int64))
    assert len(index) == 5
    assert index.search(codes, 0)[0].tolist() == [0, 1, 2, 3, 4, 5]


def test_add_existing_id_replaces_code() -> None:
    rng = np.random.default_rng(108)
    old, new = random_codes(rng, 2, 256)
    index = HammingIndex(256)
    index.add([1, 2], np.stack([old, old]))

    index.add([2], new[None, :])

    assert len(index) == 2
    lims, ids, dists = index.search(np.stack([old, new]), 0)
    assert results(lims, ids, dists, 0) == [(0, 1)]
    assert results(lims, ids, dists, 1) == [(0, 2)]


def test_removed_id_can_be_added_again() -> None:
    rng = np.random.default_rng(109)
    code = random_codes(rng, 1, 64)
    index = HammingIndex(64)
    index.add([42], code)
    index.remove([42])
    assert index.search(code, 0)[1].size == 0
    index.add([42], code)
    assert len(index) == 1
    assert index.search(code, 0)[1].tolist() == [42]


def test_duplicate_ids_in_one_add_rejected_and_index_unchanged() -> None:
    rng = np.random.default_rng(110)
    codes = random_codes(rng, 3, 64)
    index = HammingIndex(64)
    index.add([1], codes[:1])
    with pytest.raises(ValueError, match=r"duplicate ids in one add: \[5\]"):
        index.add([5, 6, 5], codes)
    assert len(index) == 1
    assert index.search(codes, 0)[0].tolist() == [0, 1, 1, 1]


@pytest.mark.parametrize(
    ("ids", "codes", "match"),
    [
        ([0, 1], zeros((2, 31)), r"shape \(n, 32\), got uint8 array of shape \(2, 31\)"),
        ([0, 1], zeros((2, 32), np.int64), r"expected uint8 .* got int64 array of shape \(2, 32\)"),
        ([0], zeros(32), r"shape \(n, 32\), got uint8 array of shape \(32,\)"),
        ([0, 1, 2], zeros((2, 32)), r"codes: expected shape \(3, 32\) .* got shape \(2, 32\)"),
        (zeros((2, 1), np.int64), zeros((2, 32)), r"ids: expected 1-D integer .* shape \(2, 1\)"),
        ([1.0, 2.0], zeros((2, 32)), r"ids: expected 1-D integer .* got float64"),
        ([True, False], zeros((2, 32)), r"ids: expected 1-D integer .* got bool"),
        (np.array([2**63], np.uint64), zeros((1, 32)), r"ids: values must fit int64"),
    ],
)
def test_add_validation(ids: ArrayLike, codes: ArrayLike, match: str) -> None:
    index = HammingIndex(256)
    with pytest.raises(ValueError, match=match):
        index.add(ids, codes)
    assert len(index) == 0


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint8, np.uint32, np.uint64])
def test_add_accepts_safe_integer_id_dtypes(dtype: type[np.integer]) -> None:
    rng = np.random.default_rng(111)
    codes = random_codes(rng, 3, 64)
    index = HammingIndex(64)
    index.add(np.array([1, 2, 3], dtype=dtype), codes)
    assert index.search(codes, 0)[1].tolist() == [1, 2, 3]


def test_non_contiguous_inputs_accepted() -> None:
    rng = np.random.default_rng(112)
    codes = random_codes(rng, 40, 256)
    ids = np.arange(80)[::2]
    contiguous, strided = HammingIndex(256), HammingIndex(256)
    contiguous.add(np.ascontiguousarray(ids), codes)
    strided.add(ids, np.asfortranarray(codes))
    for got, want in zip(
        strided.search(codes[::3], 100), contiguous.search(codes[::3].copy(), 100), strict=True
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("queries", "match"),
    [
        (zeros((1, 8)), r"queries: expected uint8 array of shape \(n, 32\), got .* \(1, 8\)"),
        (zeros(32), r"queries: .* got uint8 array of shape \(32,\)"),
        (zeros((1, 32), np.int16), r"queries: .* got int16 array"),
    ],
)
def test_search_validation(queries: NDArray[np.generic], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HammingIndex(256).search(queries, 3)


@pytest.mark.parametrize("max_distance", [-1, 2.5, True])
def test_search_rejects_bad_max_distance(max_distance: int) -> None:
    with pytest.raises(ValueError, match="max_distance"):
        HammingIndex(64).search(np.zeros((1, 8), np.uint8), max_distance)


@pytest.mark.parametrize("bits", [100, 0, -64, 32])
def test_bits_must_be_positive_multiple_of_64(bits: int) -> None:
    with pytest.raises(ValueError, match="positive multiple of 64"):
        HammingIndex(bits)


def test_bits_other_multiples_of_64_work() -> None:
    rng = np.random.default_rng(113)
    code = random_codes(rng, 1, 128)
    index = HammingIndex(128)
    index.add([9], codes_at_distance(code[0], 7, rng)[None, :])
    assert index.search(code, 7)[2].tolist() == [7]
    assert index.search(code, 6)[1].size == 0


def test_empty_index_search() -> None:
    lims, ids, dists = HammingIndex(256).search(np.zeros((3, 32), np.uint8), 256)
    assert lims.tolist() == [0, 0, 0, 0]
    assert (ids.size, dists.size) == (0, 0)
    assert (lims.dtype, ids.dtype, dists.dtype) == INT_DTYPES


def test_empty_query_batch() -> None:
    rng = np.random.default_rng(114)
    index = HammingIndex(64)
    index.add(np.arange(4), random_codes(rng, 4, 64))
    lims, ids, dists = index.search(np.zeros((0, 8), np.uint8), 64)
    assert lims.tolist() == [0]
    assert (ids.size, dists.size) == (0, 0)


def test_empty_add_is_noop() -> None:
    index = HammingIndex(64)
    index.add(np.array([], dtype=np.int64), np.zeros((0, 8), np.uint8))
    assert len(index) == 0


@pytest.mark.parametrize(("bits", "budget"), [(64, 1), (256, 500), (256, 1200)])
def test_tiny_memory_budget_gives_same_results(bits: int, budget: int) -> None:
    rng = np.random.default_rng(115)
    ids, codes, queries = build_planted(rng, bits, 10, n_queries=3)
    words = np.ascontiguousarray(pack(codes).T)
    assert brute.chunk_size(bits // 64, budget) < codes.shape[0] // 5  # forces many chunks

    small = sorted(
        zip(*(a.tolist() for a in brute.scan(words, pack(queries), 10, budget)), strict=True)
    )
    default = sorted(zip(*(a.tolist() for a in brute.scan(words, pack(queries), 10)), strict=True))

    assert small == default
    assert len(default) > 0
    index = HammingIndex(bits, memory_budget=budget, search_path="scan")
    index.add(ids, codes)
    reference = HammingIndex(bits)
    reference.add(ids, codes)
    for got, want in zip(index.search(queries, 10), reference.search(queries, 10), strict=True):
        np.testing.assert_array_equal(got, want)


def test_concurrent_searches_never_see_partial_mutation() -> None:
    rng = np.random.default_rng(116)
    n = 20_000
    ids = np.arange(n)
    code_a = random_codes(rng, 1, 256)
    code_b = codes_at_distance(code_a[0], 128, rng)[None, :]
    both = np.concatenate([code_a, code_b])
    all_a, all_b = np.repeat(code_a, n, axis=0), np.repeat(code_b, n, axis=0)
    index = HammingIndex(256)
    index.add(ids, all_a)
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(25):
                index.add(ids, all_b)  # upsert every code at once
                index.add(ids, all_a)
                index.remove(ids[::2])
                index.add(ids[::2], all_a[::2])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    seen: set[tuple[int, int]] = set()
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the threads often
    thread = threading.Thread(target=writer)
    try:
        thread.start()
        while not done.is_set():
            lims, found, dists = index.search(both, 0)
            seen.add((int(lims[1] - lims[0]), int(lims[2] - lims[1])))
            assert found.shape == dists.shape == (lims[2],)
    finally:
        thread.join()
        sys.setswitchinterval(old_interval)
    assert not errors
    assert seen <= {(n, 0), (0, n), (n // 2, 0)}
    assert len(index) == n


def test_brute_scan_rejects_mismatched_word_count() -> None:
    words = np.zeros((4, 3), np.uint64)
    with pytest.raises(ValueError, match=r"expected queries of shape \(q, 4\)"):
        brute.scan(words, np.zeros((1, 1), np.uint64), 0)
