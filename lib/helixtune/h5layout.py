"""Helixer 0.3.6 HDF5 data layout: dataset names, dtypes, storage and row geometry.

Rows of one sequence: the plus-strand subsequences [0,L), [L,2L), ... in ascending order, then
the minus-strand ones in descending order (the same boundaries, anchored at forward coordinate 0).
Every row is right-padded with zeros to L. ``start_ends`` is [start, end] for plus rows and
[end, start] (start > end) for minus rows.
"""
import collections
import concurrent.futures
import datetime
import os

import deflate
import h5py
import numpy as np
from isal import isal_zlib

import helixtune
from helixtune import cli
from helixtune.cli import UserError, lower_thread_priority, thread_budget

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


def open_h5(path, what="HDF5 file"):
    """``path`` opened read-only, or UserError: "<what> '<path>' does not exist" / "... is not
    a readable HDF5 file (<reason>)"."""
    if not os.path.isfile(path):
        raise UserError(f"{what} {str(path)!r} does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{what} {str(path)!r} is not a readable HDF5 file ({e})") from None


def subsequence_bounds(seq_len, subsequence_length):
    """Plus-strand subsequence [start, end) pairs of a sequence, as an (n, 2) int64 array."""
    starts = np.arange(0, seq_len, subsequence_length, dtype=np.int64)
    ends = np.minimum(starts + subsequence_length, seq_len)
    return np.stack([starts, ends], axis=1)


def rows_of_sequence(seq_len, subsequence_length):
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
    """Threads for compressing HDF5 chunks: :func:`cli.thread_budget` (``HELIXTUNE_THREADS``,
    the CPUs this process may use), at most 4 (1 = no threads)."""
    return min(4, thread_budget())


def deflate_chunk(data, level, fast=False):
    """A zlib stream of ``data`` (bytes or a C-contiguous array), as HDF5's deflate filter
    stores a chunk: any zlib (HDF5, h5py, HelixerPost) inflates it.

    Deflated by libdeflate at the dataset's ``level``: about twice as fast as zlib at the same
    level, and no larger. ``fast``: by ISA-L at its level 1 instead, whatever the dataset
    records: 5-10x faster again, for larger chunks; for rows that are long runs (labels, whose
    chunks are tiny anyway) and for outputs written while the CPU is busy making them
    (predictions, ~15 % larger). Sizes and speeds: benchmarks/README.md."""
    if fast:
        return isal_zlib.compress(data, 1)
    return deflate.zlib_compress(data, level)


def shuffled(row):
    """The bytes of an array as HDF5's shuffle filter arranges them: the first bytes of all
    elements, then all second bytes, ... (a C-contiguous uint8 array)."""
    row = np.ascontiguousarray(row)
    size = row.dtype.itemsize
    if size == 2:  # float16 rows (X, predictions): two vector passes, no strided copy
        words, out = row.reshape(-1).view(np.uint16), np.empty((2, row.size), np.uint8)
        np.bitwise_and(words, 0xFF, out=out[0], casting="unsafe")
        np.right_shift(words, 8, out=out[1], casting="unsafe")
        return out
    return np.ascontiguousarray(row.reshape(-1).view(np.uint8).reshape(-1, size).T)


def unshuffled(data, dtype, shape):
    """Inverse of :func:`shuffled`: an array of ``dtype`` and ``shape`` from shuffled bytes."""
    dtype = np.dtype(dtype)
    planes = np.frombuffer(data, np.uint8).reshape(dtype.itemsize, -1)
    if dtype.itemsize == 2:
        words = planes[1].astype(np.uint16)
        np.left_shift(words, 8, out=words)
        words |= planes[0]
        return words.view(dtype).reshape(shape)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(shape)


def _one_row_gzip(dset):
    """True for datasets stored as Helixer stores rows: one row per chunk, gzip, shuffle
    optional, no other filter."""
    return (dset.chunks == (1,) + dset.shape[1:] and dset.compression == "gzip"
            and not dset.fletcher32 and dset.scaleoffset is None
            and dset.dtype.itemsize in (1, 2, 4, 8) and dset.dtype.kind in "biuf")


def read_all(dset):
    """All rows of a dataset (``dset[:]``), read as :func:`read_rows` reads them."""
    return read_rows(dset, 0, dset.shape[0])


def iter_rows(dset, start, stop):
    """Rows start .. stop - 1 of a dataset one at a time, as :func:`read_rows` reads them (rows
    inflated directly are read-only arrays over the inflated bytes, with no further copy)."""
    if not _one_row_gzip(dset):
        for a in range(start, stop, 64):
            yield from dset[a:min(a + 64, stop)]
        return
    row_shape = dset.shape[1:]
    nbytes = int(np.prod(row_shape, dtype=np.int64)) * dset.dtype.itemsize
    shuffle = dset.shuffle and dset.dtype.itemsize > 1
    zeros = (0,) * len(row_shape)
    for i in range(start, stop):
        try:
            mask, raw = dset.id.read_direct_chunk((i,) + zeros)
        except (KeyError, OSError, RuntimeError):  # a chunk never written
            mask = raw = None
        if mask != 0:
            yield dset[i]
            continue
        data = isal_zlib.decompress(raw, bufsize=nbytes)
        yield (unshuffled(data, dset.dtype, row_shape) if shuffle
               else np.frombuffer(data, dset.dtype).reshape(row_shape))


#: Chunks HDF5 may touch in one read. It keeps per-chunk bookkeeping for every chunk of a read
#: (3-7 KB each) and never gives that memory back, so one read of a per-row dataset such as
#: data/seqids of a 1 Gb genome (94,000 one-row chunks) would cost up to ~650 MB.
CHUNKS_PER_READ = 256


def read_rows(dset, start, stop):
    """Rows [start, stop) of a dataset, as ``dset[start:stop]``. Chunks in Helixer's layout are
    read directly and inflated by ISA-L (2-3x faster than HDF5's own filters, with zlib); other
    layouts, and chunks never written (fill value), go through h5py, at most
    :data:`CHUNKS_PER_READ` chunks at a time."""
    out = np.empty((stop - start,) + dset.shape[1:], dset.dtype)
    if not _one_row_gzip(dset):
        step = (stop - start) if dset.chunks is None else CHUNKS_PER_READ * dset.chunks[0]
        for a in range(start, stop, max(step, 1)):
            b = min(a + step, stop)
            out[a - start:b - start] = dset[a:b]
        return out
    for i, row in enumerate(iter_rows(dset, start, stop)):
        out[i] = row
    return out


class RowWriter:
    """Write whole rows of a dataset chunked one row per chunk (Helixer's layout), compressing
    the chunks in threads (libdeflate and ISA-L release the GIL) and storing them with
    ``write_direct_chunk``.

    With threads, :meth:`write` returns before its rows are compressed, so the caller prepares
    the next rows meanwhile: chunks are stored in order as they finish, at most :attr:`BACKLOG`
    rows are in flight, and :meth:`close` stores the rest. Rows handed over must not be changed
    afterwards. A stored chunk inflates to exactly the bytes HDF5's own shuffle + deflate filters
    compress (tests/test_h5layout.py checks it); datasets with other filters are written the
    usual way. Use as a context manager, or call :meth:`close`.
    """

    #: rows compressed ahead of being stored (bounds the memory held by rows in flight)
    BACKLOG = 64

    def __init__(self, dset, threads=None, fast=False, background=False):
        self.dset = dset
        self.fast = fast  # see deflate_chunk
        self.threads = compression_threads() if threads is None else threads
        self.direct = _one_row_gzip(dset)
        self._level = dset.compression_opts
        #: True when chunks are shuffled before deflate (HDF5's shuffle filter, multi-byte types)
        self.shuffle = dset.shuffle and dset.dtype.itemsize > 1
        # background: the threads yield the cores to the caller's computation (predictions)
        self._pool = (concurrent.futures.ThreadPoolExecutor(
            self.threads, initializer=lower_thread_priority if background else None)
            if self.direct and self.threads > 1 else None)
        self._pending = collections.deque()  # (chunk offset, future of its stored bytes)
        self._uniform = {}  # chunk of a row whose positions are all alike, by value

    def compress_row(self, row):
        """The stored (deflated) chunk of one row, as HDF5's shuffle + deflate filters store it.

        :meth:`write` calls it for each row, from worker threads when there is a pool."""
        data = shuffled(row) if self.shuffle else np.ascontiguousarray(row)
        return deflate_chunk(data, self._level, self.fast)

    def write(self, start, rows):
        """Store ``rows`` (k, *row shape) as rows ``start`` .. ``start + k - 1``."""
        if not self.direct:
            self.dset[start:start + len(rows)] = rows
            return
        self._submit(start, self.compress_row, np.asarray(rows, dtype=self.dset.dtype))

    def write_from(self, start, items, make_row):
        """Store ``make_row(item)`` for each item as rows ``start`` ...; ``item`` is an array
        along the row's positions (byte codes, classes). Direct writers make each row in the
        compression threads, so the caller never builds the rows of a block at once."""
        if not self.direct:
            self.write(start, np.stack([make_row(item) for item in items]))
            return
        dtype = self.dset.dtype
        self._submit(start, lambda item: self.compress_row(np.asarray(make_row(item), dtype)),
                     items)

    def _submit(self, start, compress, items):
        zeros = (0,) * (self.dset.ndim - 1)
        for i, item in enumerate(items):
            offset = (start + i,) + zeros
            if self._pool is None:
                self.dset.id.write_direct_chunk(offset, self._compress_once(compress, item))
            else:
                self._pending.append((offset, self._pool.submit(self._compress_once, compress,
                                                                item)))
                self._store(self.BACKLOG)

    def _compress_once(self, compress, item):
        """``compress(item)``, computed once per distinct value for rows whose positions are all
        alike (all intergenic labels, a row of Ns, ...: most rows of gene-sparse genomes)."""
        item = np.asarray(item)
        first = item[0]
        # 17 samples first: most rows that are not uniform fail there, cheaply
        if not ((item[::max(1, len(item) // 16)] == first).all() and (item == first).all()):
            return compress(item)
        key = (item.dtype.str, item.shape, first.tobytes())
        chunk = self._uniform.get(key)
        if chunk is None:  # two threads may both compute it: the same bytes
            chunk = self._uniform[key] = compress(item)
        return chunk

    def _store(self, backlog):
        """Store finished chunks in order, waiting while more than ``backlog`` are in flight."""
        pending = self._pending
        while pending and (len(pending) > backlog or pending[0][1].done()):
            offset, future = pending.popleft()
            self.dset.id.write_direct_chunk(offset, future.result())

    def close(self):
        """Store the rows still in flight and stop the threads."""
        try:
            self._store(0)
        finally:
            self._shutdown()

    def _shutdown(self):
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:  # the output is abandoned: do not wait for (or store) the rest
            self._shutdown()


def add_data_layout_args(parser, write_by_default=20_000_000, write_by_verb="encoded"):
    """Add the "Data layout" group shared by the HDF5 writers (Helixer's fasta2h5.py and
    geenuff2h5.py option names and defaults): ``--subsequence-length``, ``--write-by`` and
    ``--compression``. ``write_by_verb`` names what the tool does to the bases in ``--write-by``'s
    help ("encoded", "labelled"). Returns the group so a tool can add its own options to it."""
    data = parser.add_argument_group("Data layout")
    data.add_argument("--subsequence-length", type=cli.positive_int,
                      default=DEFAULT_SUBSEQUENCE_LENGTH,
                      help="length of the rows the sequences are cut into; the released models "
                           "need a multiple of 9")
    data.add_argument("--write-by", type=cli.positive_int, default=write_by_default,
                      help=f"bases {write_by_verb} and written at a time (bounds memory); "
                           "rounded down to a multiple of --subsequence-length")
    data.add_argument("--compression", choices=["gzip", "lzf"], default="gzip",
                      help="HDF5 compression (gzip level 4 or lzf)")
    return data


def data_layout_write_by(args, pool_size=9):
    """Check the options of :func:`add_data_layout_args` and return ``--write-by`` rounded down
    to whole rows; warn when the row length does not fit the released models' pool size."""
    L = args.subsequence_length
    if args.write_by < L:
        raise UserError(f"--write-by ({args.write_by}) must be at least "
                        f"--subsequence-length ({L})", code=2)
    if L % pool_size:
        cli.log.warning("--subsequence-length %d is not a multiple of %d, the pool size of "
                        "the released Helixer models; such files cannot be used with them",
                        L, pool_size)
    return args.write_by // L * L
