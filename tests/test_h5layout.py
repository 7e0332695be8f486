"""h5layout.RowWriter stores exactly the chunks HDF5's own filters store (byte for byte), with
and without threads; other filters fall back to plain writes."""
import h5py
import numpy as np
import pytest

from helixtune import h5layout


def _chunks(dset):
    return [dset.id.read_direct_chunk((i,) + (0,) * (dset.ndim - 1)) for i in range(dset.shape[0])]


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
def test_write_prepared_equals_h5py(tmp_path, threads):
    from helixtune.sequence import encode, encode_shuffled
    L, n = 40, 5
    codes = np.random.default_rng(3).choice(np.frombuffer(b"ACGTNacgtnRYKM\x00", np.uint8), (n, L))
    with h5py.File(tmp_path / "a.h5", "w") as a, h5py.File(tmp_path / "b.h5", "w") as b:
        da = h5layout.create_dataset(a, "X", n, L)
        db = h5layout.create_dataset(b, "X", n, L)
        da[:] = encode(codes)
        with h5layout.RowWriter(db, threads=threads) as w:
            assert w.direct and w.shuffle
            w.write_prepared(0, codes, encode_shuffled)
        assert _chunks(da) == _chunks(db)
