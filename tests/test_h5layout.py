"""h5layout.RowWriter stores chunks that inflate to exactly what HDF5's own filters compress
(shuffled bytes included), with and without threads, whatever the order and size of the writes;
other filters fall back to plain writes."""
import os
import subprocess
import sys
import zlib

import h5py
import numpy as np
import pytest

from helixtune import h5layout


def _chunks(dset):
    """(filter mask, stored bytes inflated) of every chunk: equal when the filters' input is."""
    out = []
    for i in range(dset.shape[0]):
        mask, raw = dset.id.read_direct_chunk((i,) + (0,) * (dset.ndim - 1))
        out.append((mask, zlib.decompress(raw) if dset.compression == "gzip" else raw))
    return out


@pytest.mark.parametrize("name,compression", [("X", "gzip"), ("y", "gzip"), ("sample_weights", "gzip"),
                                              ("start_ends", "gzip"), ("X", "lzf")])
@pytest.mark.parametrize("threads", [1, 3])
def test_rowwriter_equals_h5py(tmp_path, name, compression, threads):
    L, n = 50, 7
    dtype, shape_of = h5layout.DATA_DATASETS[name]
    rng = np.random.default_rng(0)
    if name == "X":
        rows = rng.choice([0, 0.25, 0.33, 0.5, 1], size=(n, L, 4)).astype(np.float16)
    elif name == "start_ends":
        rows = rng.integers(0, 10**9, (n, 2))
    else:
        rows = rng.integers(0, 3, (n,) + shape_of(L)).astype(dtype)
    with h5py.File(tmp_path / "a.h5", "w") as a, h5py.File(tmp_path / "b.h5", "w") as b:
        da = h5layout.create_dataset(a, name, n, L, compression)
        db = h5layout.create_dataset(b, name, n, L, compression)
        da[2:5] = rows[2:5]
        da[0:2] = rows[0:2]
        da[5:] = rows[5:]
        with h5layout.RowWriter(db, threads=threads) as w:
            assert w.direct == (compression == "gzip")
            w.write(2, rows[2:5])
            w.write(0, rows[0:2])
            w.write(5, rows[5:])
        assert _chunks(da) == _chunks(db)
        np.testing.assert_array_equal(db[:], rows)


def test_compression_threads(monkeypatch):
    monkeypatch.setenv("HELIXTUNE_THREADS", "1")
    assert h5layout.compression_threads() == 1
    monkeypatch.delenv("HELIXTUNE_THREADS")
    assert 1 <= h5layout.compression_threads() <= 4


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_write_from_equals_h5py(tmp_path, threads, compression):
    """Rows made from byte codes in the writer equal h5py's writing of the encoded rows."""
    from helixtune.sequence import encode
    L, n = 40, 5
    codes = np.random.default_rng(3).choice(np.frombuffer(b"ACGTNacgtnRYKM\x00", np.uint8), (n, L))
    with h5py.File(tmp_path / "a.h5", "w") as a, h5py.File(tmp_path / "b.h5", "w") as b:
        da = h5layout.create_dataset(a, "X", n, L, compression)
        db = h5layout.create_dataset(b, "X", n, L, compression)
        da[:] = encode(codes)
        with h5layout.RowWriter(db, threads=threads) as w:
            assert w.direct == (compression == "gzip") and w.shuffle
            w.write_from(0, codes, encode)
        assert _chunks(da) == _chunks(db)


@pytest.mark.parametrize("threads,fast", [(1, False), (2, False), (2, True), (1, True)])
def test_backlog_and_size(tmp_path, threads, fast, monkeypatch):
    """More rows than the backlog, in several writes: all stored in place; libdeflate's chunks
    are no larger than zlib's at the same level (+1 %), ISA-L's at most 25 % larger."""
    monkeypatch.setattr(h5layout.RowWriter, "BACKLOG", 3)
    L, n = 500, 20
    rows = np.random.default_rng(5).choice([0, 0.25, 1], size=(n, L, 4)).astype(np.float16)
    with h5py.File(tmp_path / "a.h5", "w") as a, h5py.File(tmp_path / "b.h5", "w") as b:
        da = h5layout.create_dataset(a, "X", n, L)
        db = h5layout.create_dataset(b, "X", n, L)
        da[:] = rows
        with h5layout.RowWriter(db, threads=threads, fast=fast) as w:
            for start in range(0, n, 7):
                w.write(start, rows[start:start + 7])
        assert _chunks(da) == _chunks(db)
        np.testing.assert_array_equal(db[:], rows)
        size = lambda d: sum(d.id.get_chunk_info(i).size for i in range(n))  # noqa: E731
        assert size(db) <= (1.25 if fast else 1.01) * size(da)


def test_failure_in_a_thread_is_raised(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        dset = h5layout.create_dataset(h5, "y", 4, 10)
        def prepare(row):
            if row[0]:
                raise ValueError("bad row")
            return np.repeat(row, 4).reshape(-1, 4)

        with pytest.raises(ValueError, match="bad row"):  # from write_from or the exit
            with h5layout.RowWriter(dset, threads=2) as w:
                w.write_from(0, np.eye(2, 10, dtype=np.int8)[::-1], prepare)
        assert w._pool is None and not w._pending


ONE_ROW = dict(chunks=True)  # replaced by one row per chunk below


@pytest.mark.parametrize("name,storage", [
    ("X", dict(ONE_ROW, compression="gzip", shuffle=True)),
    ("y", dict(ONE_ROW, compression="gzip", shuffle=True)),
    ("y", dict(ONE_ROW, compression="gzip")),
    ("gene_lengths", dict(ONE_ROW, compression="gzip", shuffle=True)),
    ("start_ends", dict(ONE_ROW, compression="gzip", shuffle=True)),
    ("X", dict(ONE_ROW, compression="lzf")),
    ("y", dict(compression="gzip", chunks=(3, 30, 4))),
    ("y", {})])
def test_read_rows_equals_h5py(tmp_path, name, storage):
    """Direct reads equal h5py's (other storage goes through h5py), unwritten rows (fill
    value) included."""
    L, n = 30, 6
    dtype, shape_of = h5layout.DATA_DATASETS[name]
    rows = np.random.default_rng(1).integers(0, 1000, (n,) + shape_of(L)).astype(dtype)
    if storage.get("chunks") is True:
        storage = dict(storage, chunks=(1,) + shape_of(L))
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        dset = h5.create_dataset(name, shape=rows.shape, dtype=dtype, **storage)
        dset[1:5] = rows[1:5]  # rows 0 and 5 never written
        for a, b in ((0, n), (2, 4), (5, 6)):
            np.testing.assert_array_equal(h5layout.read_rows(dset, a, b), dset[a:b])


@pytest.mark.parametrize("chunks", [(1,), (7,), None])
def test_read_rows_in_blocks_equals_h5py(tmp_path, monkeypatch, chunks):
    """Datasets HDF5 reads (strings here) come in blocks of CHUNKS_PER_READ chunks; the blocks
    join up to h5py's own read, whatever the bounds."""
    monkeypatch.setattr(h5layout, "CHUNKS_PER_READ", 3)
    seqids = np.array([f"chr{i // 4}".encode() for i in range(50)], dtype="S50")
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        dset = h5.create_dataset("seqids", data=seqids, chunks=chunks,
                                 compression="gzip" if chunks else None)
        for a, b in ((0, 50), (1, 22), (21, 22), (7, 7)):
            np.testing.assert_array_equal(h5layout.read_rows(dset, a, b), dset[a:b])
        np.testing.assert_array_equal(h5layout.read_all(dset), seqids)


def test_read_all_of_many_chunks_stays_small(tmp_path):
    """One h5py read of N one-row chunks costs HDF5 3-7 KB per chunk, never given back (~55 MB
    here); read_all stays far below that (a fresh process, so that nothing else is measured)."""
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("seqids", data=np.full(20_000, b"chrI", "S50"), chunks=(1,),
                          compression="gzip", shuffle=True)
    probe = ("import sys, h5py\n"
             "from helixtune import h5layout\n"
             "def rss():\n"
             "    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])\n"
             "with h5py.File(sys.argv[1], 'r') as h5:\n"
             "    before = rss()\n"
             "    assert len(h5layout.read_all(h5['seqids'])) == 20_000\n"
             "    print((rss() - before) // 1024)\n")
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc (Linux) to read the process's RSS")
    grown_mb = int(subprocess.run([sys.executable, "-c", probe, str(path)], check=True,
                                  capture_output=True, text=True).stdout)
    assert grown_mb < 30


@pytest.mark.parametrize("dtype", [np.int8, np.float16, np.uint32, np.int64])
def test_shuffled_round_trip(dtype):
    row = np.random.default_rng(2).integers(0, 100, (7, 4)).astype(dtype)
    data = h5layout.shuffled(row)
    size = np.dtype(dtype).itemsize
    assert data.tobytes() == row.view(np.uint8).reshape(-1, size).T.tobytes()
    np.testing.assert_array_equal(h5layout.unshuffled(data.tobytes(), dtype, (7, 4)), row)


def test_background_threads_run_niced(tmp_path):
    """RowWriter(background=True) compresses at a lower priority than the main thread (Linux's
    per-thread nice value); the main thread keeps its own."""
    import sys
    import threading

    seen = []

    def prepare(row):
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return np.repeat(row, 4).reshape(-1, 4)

    main_nice = os.getpriority(os.PRIO_PROCESS, os.getpid())
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        dset = h5layout.create_dataset(h5, "y", 3, 10)
        with h5layout.RowWriter(dset, threads=2, background=True) as w:
            w.write_from(0, np.zeros((3, 10), np.int8) + np.arange(3)[:, None], prepare)
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == main_nice
    expected = min(19, main_nice + 10) if sys.platform.startswith("linux") else main_nice
    assert seen == [expected] * 3
