"""h5rows.copy_rows: rows copied as stored chunks equal rows copied through HDF5's filters."""
import h5py
import numpy as np
import pytest

from helixtune import h5rows

N = 23


def _source(path):
    """Per-row datasets in every storage copy_rows meets, some chunks never written."""
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("data/seqids", data=np.array([b"chr%d" % (i // 5) for i in range(N)]),
                          chunks=(1,), compression="gzip", compression_opts=4)
        h5.create_dataset("data/X", data=rng.random((N, 30, 4)).astype(np.float16),
                          chunks=(1, 30, 4), compression="gzip", shuffle=True)
        cov = h5.create_dataset("evaluation/cov", (N, 30, 5), np.int64, chunks=(1, 30, 1),
                                compression="lzf", shuffle=True, fillvalue=-1)
        cov[::3] = rng.integers(0, 9, (len(range(0, N, 3)), 30, 5))   # other rows: fill value
        h5.create_dataset("data/edge", data=rng.integers(0, 99, (N, 10)), chunks=(1, 7),
                          compression="gzip")
        h5.create_dataset("data/two_rows", data=rng.integers(0, 99, (N, 6)), chunks=(2, 6),
                          compression="gzip")
        h5.create_dataset("data/contiguous", data=rng.integers(0, 99, (N, 3)))
        h5.create_dataset("data/names", data=[f"row{i}" for i in range(N)],
                          dtype=h5py.string_dtype(), chunks=(1,))
        h5.create_dataset("evaluation/cov_meta/bam_files", data=[b"a.bam"])


def _copy(src_path, out_paths, masks, monkeypatch=None):
    with h5py.File(src_path) as src:
        dsts = [h5py.File(p, "w") for p in out_paths]
        names = h5rows.copy_structure(src, dsts, [int(m.sum()) for m in masks], N)
        written = h5rows.copy_rows(src, dsts, masks, names, rows_per_block=4)
        for d in dsts:
            d.close()
    return names, written


@pytest.mark.parametrize("split", [False, True])
def test_stored_chunks_equal_filtered_copy(tmp_path, monkeypatch, split):
    src = tmp_path / "in.h5"
    _source(src)
    keep = np.random.default_rng(5).random(N) < 0.6
    masks = [keep, ~keep] if split else [keep]
    fast = [tmp_path / f"fast{i}.h5" for i in range(len(masks))]
    names, written = _copy(src, fast, masks)
    assert written == [int(m.sum()) for m in masks]
    with h5py.File(src) as h5:
        stored = {n for n in names if h5rows.stored_chunk_copy(h5[n], [h5[n]])}
    assert stored == {"data/seqids", "data/X", "evaluation/cov", "data/edge"}
    monkeypatch.setattr(h5rows, "stored_chunk_copy", lambda *a: False)
    slow = [tmp_path / f"slow{i}.h5" for i in range(len(masks))]
    _copy(src, slow, masks)
    for m, f, s in zip(masks, fast, slow):
        with h5py.File(f) as a, h5py.File(s) as b, h5py.File(src) as h5:
            for n in names:
                np.testing.assert_array_equal(a[n][()], b[n][()], err_msg=n)
                np.testing.assert_array_equal(a[n][()], h5[n][()][m], err_msg=n)
                assert a[n].chunks == h5[n].chunks and a[n].compression == h5[n].compression
            rows = np.flatnonzero(m)
            for out_row, row in enumerate(rows):   # stored bytes travel as they are
                assert a["data/X"].id.read_direct_chunk((out_row, 0, 0)) == \
                    h5["data/X"].id.read_direct_chunk((row, 0, 0))
                written_in = row % 3 == 0
                try:
                    a["evaluation/cov"].id.read_direct_chunk((out_row, 0, 4))
                    allocated = True
                except RuntimeError:
                    allocated = False
                assert allocated == written_in, "a chunk never written stays unwritten"


def test_different_filters_are_not_copied_as_stored(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        a = h5.create_dataset("a", (4, 8), np.int32, chunks=(1, 8), compression="gzip")
        b = h5.create_dataset("b", (4, 8), np.int32, chunks=(1, 8), compression="lzf")
        c = h5.create_dataset("c", (4, 8), np.int32, chunks=(1, 4), compression="gzip")
        d = h5.create_dataset("d", (4, 8), np.int32, chunks=(1, 8), compression="gzip",
                              shuffle=True)
        assert h5rows.stored_chunk_copy(a, [a])
        assert not h5rows.stored_chunk_copy(a, [b])
        assert not h5rows.stored_chunk_copy(a, [c])
        assert not h5rows.stored_chunk_copy(a, [a, d])
