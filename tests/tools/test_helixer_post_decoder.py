"""helixer_post_bin's decoder against the dense one it replaced (issue 16): the same state path,
ties included, on random regions with coarse (tie-rich) probabilities, with small pages, page
cache, window, map and heap (evictions, refills, spills and growth), and on real 0.3.6
predictions."""
import numpy as np
import pytest
from numba import njit

from helixtune import postprocess_hmm as hmm


@njit(cache=True)
def reference_decode(em, bc, state_len, state_emission, family_of):
    """The decoder before issue 16 (dense uint64 cost and uint8 back-pointer per cell)."""
    n = em.shape[0]
    best = np.full((n + 1, hmm.N_STATES), np.iinfo(np.uint64).max, np.uint64)
    prev = np.full((n + 1, hmm.N_STATES), 255, np.uint8)
    hc = np.empty(1024, np.uint64)
    he = np.empty(1024, np.int64)
    hs = np.empty(1024, np.uint8)
    succ = np.empty(16, np.int64)
    trans = np.empty(16, np.float64)
    best[0, hmm.INTERGENIC] = 0
    hc[0], he[0], hs[0] = 0, 0, hmm.INTERGENIC
    size = 1
    final_state = -1
    while size > 0:
        c, e, s = hc[0], he[0], hs[0]
        size -= 1
        if size > 0:
            hc[0], he[0], hs[0] = hc[size], he[size], hs[size]
            hmm._sift_down_to_bottom(hc, he, hs, size)
        if c > best[e, s]:
            continue
        if e == n:
            final_state = s
            break
        k = hmm._successors(s, e, n, bc, 0, family_of, succ, trans)
        for j in range(k):
            t = succ[j]
            tc = trans[j]
            if tc < 0.0:
                continue
            ne = e + state_len[t]
            if ne > n:
                continue
            col = state_emission[t]
            acc = tc
            for i in range(e, ne):
                acc += em[i, col]
            nc = c + np.uint64(acc * 1e6)
            if nc < best[ne, t]:
                best[ne, t] = nc
                prev[ne, t] = s
                if size == hc.shape[0]:
                    hc = hmm._grow(hc)
                    he = hmm._grow(he)
                    hs = hmm._grow(hs)
                hc[size], he[size], hs[size] = nc, ne, t
                hmm._sift_up(hc, he, hs, 0, size)
                size += 1
    steps = 0
    e = n
    s = final_state
    while e > 0:
        steps += 1
        p = prev[e, s]
        e -= state_len[s]
        s = p
    starts = np.empty(steps, np.int64)
    states = np.empty(steps, np.int64)
    e = n
    s = final_state
    i = steps
    while e > 0:
        i -= 1
        states[i] = s
        p = prev[e, s]
        e -= state_len[s]
        starts[i] = e
        s = p
    return starts, states


def reference_path(cls, phase, x):
    n = len(cls)
    em = np.empty((n, 7))
    bc = np.empty((n, 4))
    hmm.emissions(cls.astype(np.float32), phase.astype(np.float32), em)
    hmm.base_costs(x.astype(np.float32), bc)
    return reference_decode(em, bc, hmm.STATE_LEN, hmm.STATE_EMISSION, hmm.FAMILY_OF)


def coarse_region(rng, n, dtype):
    """Each position's classes and phases drawn from a few rows (so equal step costs, ties, are
    common), in runs like genes; bases one-hot with some N (0.25) rows."""
    cls_rows = np.array([[0.75, 0.125, 0.125, 0], [0.125, 0.75, 0, 0.125], [0, 0.25, 0.75, 0],
                         [0.125, 0, 0.25, 0.625], [0.5, 0, 0.5, 0], [0.25, 0.25, 0.25, 0.25]])
    phase_rows = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                           [0.5, 0.25, 0.25, 0], [0, 0, 0, 0]])
    runs = np.repeat(rng.integers(0, len(cls_rows), n // 20 + 1), 20)[:n]
    noise = rng.random(n) < 0.2
    runs[noise] = rng.integers(0, len(cls_rows), noise.sum())
    cls = cls_rows[runs]
    phase = phase_rows[rng.integers(0, len(phase_rows), n)]
    x = np.eye(4)[rng.integers(0, 4, n)]
    x[rng.random(n) < 0.02] = 0.25
    return cls.astype(dtype), phase.astype(dtype), x.astype(dtype)


@pytest.mark.parametrize("seed", range(40))
def test_same_path_as_the_dense_decoder(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(60, 1500))
    dtype = [np.float16, np.float16, np.float32, np.float64][seed % 4]
    cls, phase, x = coarse_region(rng, n, dtype)
    want = reference_path(cls, phase, x)
    small = dict(page_shift=int(rng.integers(0, 7)), cache_pages=int(rng.integers(1, 5)),
                 window_shift=int(rng.integers(0, 7)),
                 map_capacity=int(rng.integers(1, 64)), heap_capacity=int(rng.integers(1, 16)))
    for kwargs in ({}, small):
        got = hmm.decode_path(cls, phase, x, **kwargs)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), kwargs


def test_ties_happen_in_the_cases():
    """The coarse probabilities give equal costs: many steps of one region cost the same."""
    cls, phase, x = coarse_region(np.random.default_rng(0), 500, np.float16)
    em = np.empty((500, 7))
    hmm.emissions(cls.astype(np.float32), phase.astype(np.float32), em)
    assert len(np.unique(em)) < 60


@pytest.mark.realdata
def test_same_path_on_real_predictions(shared_data):
    """The upstream tiny model's predictions for M. pusilla (float16, read in place)."""
    import h5py
    d = shared_data / "helixer_h5" / "upstream_0.3.6"
    with h5py.File(d / "mpusilla.fasta2h5.h5") as g, \
            h5py.File(d / "mpusilla.tiny_model.predictions.h5") as p:
        rows = slice(10, 12)
        x = g["data/X"][rows].reshape(-1, 4)
        cls = p["predictions"][rows].reshape(-1, 4)
        phase = p["predictions_phase"][rows].reshape(-1, 4)
    assert cls.dtype == np.float16
    want = reference_path(cls, phase, x)
    for kwargs in ({}, dict(page_shift=5, cache_pages=3, window_shift=6)):
        got = hmm.decode_path(cls, phase, x, **kwargs)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
