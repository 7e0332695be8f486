"""Helixer 0.3.6 HDF5 data layout: dataset names, dtypes, storage and row geometry.

Rows of one sequence: the plus-strand subsequences [0,L), [L,2L), ... in ascending order, then
the minus-strand ones in descending order (the same boundaries, anchored at forward coordinate 0).
Every row is right-padded with zeros to L. ``start_ends`` is [start, end] for plus rows and
[end, start] (start > end) for minus rows.
"""
import concurrent.futures
import datetime
import os
import zlib

import numpy as np

import helixtune
from helixtune.cli import UserError

DEFAULT_SUBSEQUENCE_LENGTH = 21384
#: Maximum byte lengths of the fixed-size string datasets.
SEQID_BYTES, SPECIES_BYTES = 50, 25

#: name -> (h5 dtype, shape after the row axis given L) of every ``data/`` dataset.
DATA_DATASETS = {
    "X": (np.float16, lambda L: (L, 4)),
    "y": (np.int8, lambda L: (L, 4)),
    "phases": (np.int8, lambda L: (L, 4)),
    "sample_weights": (np.int8, lambda L: (L,)),
    "transitions": (np.int8, lambda L: (L, 6)),
    "gene_lengths": (np.uint32, lambda L: (L,)),
    "err_samples": (bool, lambda L: ()),
    "fully_intergenic_samples": (bool, lambda L: ()),
    "is_annotated": (bool, lambda L: ()),
    "species": ("S25", lambda L: ()),
    "seqids": ("S50", lambda L: ()),
    "start_ends": (np.int64, lambda L: (2,)),
}


def subsequence_bounds(seq_len, subsequence_length):
    """Plus-strand subsequence [start, end) pairs of a sequence, as an (n, 2) int64 array."""
    starts = np.arange(0, seq_len, subsequence_length, dtype=np.int64)
    ends = np.minimum(starts + subsequence_length, seq_len)
    return np.stack([starts, ends], axis=1)


def n_rows(seq_len, subsequence_length):
    """Number of rows (both strands) a sequence of ``seq_len`` bp occupies."""
    return 2 * -(-seq_len // subsequence_length)


def start_ends(seq_len, subsequence_length):
    """``start_ends`` of all rows of one sequence in file order (plus rows, then minus rows)."""
    plus = subsequence_bounds(seq_len, subsequence_length)
    minus = plus[::-1, ::-1]
    return np.concatenate([plus, minus])


def create_dataset(group, name, n, subsequence_length, compression="gzip", dtype=None,
                   tail_shape=None):
    """Create ``group/name`` with Helixer's storage: one row per chunk, resizable rows,
    gzip level 4 or lzf, shuffle only for datasets of more than one dimension."""
    if dtype is None or tail_shape is None:
        dtype, shape_of = DATA_DATASETS[name]
        tail_shape = shape_of(subsequence_length)
    shape = (n,) + tuple(tail_shape)
    return group.create_dataset(name, shape=shape, maxshape=(None,) + tuple(tail_shape),
                                chunks=(1,) + tuple(tail_shape), dtype=dtype,
                                compression=compression, shuffle=len(shape) > 1)


def write_root_attrs(h5file, input_path):
    """Root attributes as Helixer writes them (all strings)."""
    h5file.attrs["timestamp"] = str(datetime.datetime.now())
    h5file.attrs["input_path"] = str(input_path)
    version = helixtune.__version__  # looked up here, not at import (see helixtune.__getattr__)
    h5file.attrs["geenuff_commit"] = f"commit not found, version: helixtune {version}"
    h5file.attrs["helixer_commit"] = f"commit not found, version: helixtune {version}"


def check_name_length(value, limit, what, where):
    """Helixer truncates long names silently; we refuse them with a clear message."""
    encoded = value.encode() if isinstance(value, str) else value
    if len(encoded) > limit:
        raise UserError(f"{where}: {what} {value!r} is {len(encoded)} bytes long; "
                        f"Helixer's HDF5 layout stores at most {limit} bytes")
    try:
        encoded.decode("ascii")
    except UnicodeDecodeError:
        raise UserError(f"{where}: {what} {value!r} is not ASCII") from None


def compression_threads():
    """Threads for compressing HDF5 chunks: the CPUs this process may use, at most 4;
    ``HELIXTUNE_THREADS`` overrides (1 = no threads)."""
    env = os.environ.get("HELIXTUNE_THREADS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


class RowWriter:
    """Write whole rows of a dataset chunked one row per chunk (Helixer's layout), compressing
    the chunks in threads (zlib releases the GIL) and storing them with ``write_direct_chunk``.

    The stored chunks are byte for byte what HDF5's own shuffle + deflate filters write
    (tests/test_h5layout.py checks it); datasets with other filters are written the usual way.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, dset, threads=None):
        self.dset = dset
        self.threads = compression_threads() if threads is None else threads
        self.direct = (dset.chunks == (1,) + dset.shape[1:] and dset.compression == "gzip"
                       and not dset.fletcher32 and dset.scaleoffset is None
                       and dset.dtype.itemsize in (1, 2, 4, 8))
        self._level = dset.compression_opts
        self._shuffle = dset.shuffle and dset.dtype.itemsize > 1
        #: True when chunks are shuffled before deflate (what ``write_prepared`` must produce).
        self.shuffle = self._shuffle
        self._pool = (concurrent.futures.ThreadPoolExecutor(self.threads)
                      if self.direct and self.threads > 1 else None)

    def compress_row(self, row):
        """The stored (deflated) chunk of one row, as HDF5's shuffle + deflate filters write it.

        :meth:`write` calls it once per row, from worker threads when there is a pool. A subclass
        may override it (e.g. to reuse the chunk of a repeated row) and call
        ``super().compress_row(row)``; it must stay thread-safe and return the same bytes."""
        data = np.ascontiguousarray(row)
        if self._shuffle:  # HDF5's shuffle: all first bytes of the elements, then all second ...
            data = data.view(np.uint8).reshape(-1, data.dtype.itemsize).T
        return zlib.compress(np.ascontiguousarray(data).tobytes(), self._level)

    def write(self, start, rows):
        """Store ``rows`` (k, *row shape) as rows ``start`` .. ``start + k - 1``."""
        if not self.direct:
            self.dset[start:start + len(rows)] = rows
            return
        rows = np.asarray(rows, dtype=self.dset.dtype)
        zeros = (0,) * (rows.ndim - 1)
        chunks = (self._pool.map(self.compress_row, rows) if self._pool
                  else map(self.compress_row, rows))
        for i, chunk in enumerate(chunks):
            self.dset.id.write_direct_chunk((start + i,) + zeros, chunk)

    def write_prepared(self, start, items, prepare):
        """Store one row per item as rows ``start`` ..., where ``prepare(item)`` returns the
        row's bytes exactly as they enter deflate (shuffled if :attr:`shuffle`). Only for
        :attr:`direct` writers; lets a caller skip building the rows as arrays."""
        assert self.direct, "write_prepared needs a direct (gzip, one row per chunk) writer"
        zeros = (0,) * (self.dset.ndim - 1)
        level = self._level

        def compress(item):
            return zlib.compress(prepare(item), level)

        chunks = self._pool.map(compress, items) if self._pool else map(compress, items)
        for i, chunk in enumerate(chunks):
            self.dset.id.write_direct_chunk((start + i,) + zeros, chunk)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
