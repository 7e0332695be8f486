"""Copy a row subset of a Helixer HDF5 file into one or more new files, streaming.

A dataset is *per-row* when its first dimension equals the number of rows N (``data/seqids``)
and it does not sit in a metadata group (a group whose name ends in ``meta``, such as
``evaluation/rnaseq_meta``). Per-row datasets (``data/*``, ``evaluation/*_coverage``,
``alternative/*/...``) receive the selected rows in their original order; every other dataset is
copied as is. Storage (dtype, chunks, compression, shuffle, fill value) and attributes are kept;
rows stored one per chunk (Helixer's layout) travel as their stored, compressed chunks.
Nothing time-dependent is written, so the same inputs give byte-identical files.
"""
import itertools

import h5py
import numpy as np

from helixtune.cli import UserError


def row_count(h5, path):
    """Number of rows of an open Helixer file (length of ``data/seqids``)."""
    if "data/seqids" not in h5 or "data/start_ends" not in h5:
        raise UserError(f"{path}: not a Helixer data file (no data/seqids or data/start_ends)")
    return len(h5["data/seqids"])


def subsequence_length(h5, path):
    """L of a Helixer data file, from the first per-row dataset with a position axis."""
    for name in ("data/X", "data/y", "data/sample_weights"):
        if name in h5 and h5[name].ndim >= 2:
            return h5[name].shape[1]
    raise UserError(f"{path}: cannot tell the subsequence length (no data/X, data/y or "
                    "data/sample_weights)")


def _in_meta_group(name):
    return any(part.endswith("meta") for part in name.split("/")[:-1])


def is_per_row(name, dset, n):
    return dset.ndim >= 1 and dset.shape[0] == n and not _in_meta_group(name)


def _items(h5):
    """(name, object) of every group and dataset below ``h5``, in a fixed (sorted) order."""
    out = []
    h5.visititems(lambda name, obj: out.append((name, obj)))
    return sorted(out, key=lambda item: item[0])


def _create_like(dst, name, src, n_out):
    shape = (n_out,) + src.shape[1:]
    kwargs = dict(shape=shape, dtype=src.dtype, chunks=src.chunks, compression=src.compression,
                  compression_opts=src.compression_opts, shuffle=src.shuffle,
                  fletcher32=src.fletcher32, track_times=False)
    if src.chunks is not None:
        kwargs["maxshape"] = (None,) + tuple(src.maxshape[1:])
    if src.fillvalue is not None and src.dtype.kind not in "OV":
        kwargs["fillvalue"] = src.fillvalue
    out = dst.create_dataset(name, **kwargs)
    for key, value in sorted(src.attrs.items()):
        out.attrs[key] = value
    return out


def copy_structure(src, dsts, counts, n):
    """Create every group and dataset of ``src`` in each file of ``dsts``.

    Per-row datasets get ``counts[i]`` rows in ``dsts[i]`` (filled later by :func:`copy_rows`);
    the others are copied whole. Root attributes of ``src`` are copied too.
    Returns the names of the per-row datasets."""
    for dst in dsts:
        for key, value in sorted(src.attrs.items()):
            dst.attrs[key] = value
    per_row = []
    for name, obj in _items(src):
        if isinstance(obj, h5py.Group):
            for dst in dsts:
                group = dst.require_group(name)
                for key, value in sorted(obj.attrs.items()):
                    group.attrs[key] = value
        elif isinstance(obj, h5py.Dataset):
            if is_per_row(name, obj, n):
                per_row.append(name)
                for dst, count in zip(dsts, counts):
                    _create_like(dst, name, obj, count)
            else:
                data = obj[()]
                for dst in dsts:
                    if obj.ndim:
                        out = _create_like(dst, name, obj, obj.shape[0])
                        if obj.size:
                            out[...] = data
                    else:
                        out = dst.create_dataset(name, data=data, track_times=False)
                        for key, value in sorted(obj.attrs.items()):
                            out.attrs[key] = value
    return per_row


def copy_rows(src, dsts, masks, names, rows_per_block, progress=None):
    """Copy the rows where ``masks[i]`` is True of every per-row dataset into ``dsts[i]``.

    The input's row order is kept. Datasets stored one row per chunk (Helixer's layout) are
    copied as stored chunks, never inflated or compressed again (:func:`stored_chunk_copy`);
    others are read ``rows_per_block`` rows at a time, so memory stays bounded by the block size
    times the widest row."""
    n = len(masks[0])
    written = [0] * len(dsts)
    for name in names:
        src_dset = src[name]
        dst_dsets = [dst[name] for dst in dsts]
        offsets = [0] * len(dsts)
        copy_block = _copy_stored_chunks if stored_chunk_copy(src_dset, dst_dsets) \
            else _copy_values
        for a in range(0, n, rows_per_block):
            b = min(a + rows_per_block, n)
            wanted = [m[a:b] for m in masks]
            if any(w.any() for w in wanted):
                copy_block(src_dset, dst_dsets, wanted, a, offsets)
            if progress is not None:
                progress.update(b - a)
        for i, m in enumerate(masks):
            assert offsets[i] == int(m.sum()), (name, offsets[i], int(m.sum()))
            written[i] = offsets[i]
    return written


def _filters(dset):
    plist = dset.id.get_create_plist()
    return [plist.get_filter(i) for i in range(plist.get_nfilters())]


def stored_chunk_copy(src_dset, dst_dsets):
    """True when rows of ``src_dset`` can be copied as stored (compressed) chunks into every
    dataset of ``dst_dsets``: one row per chunk, fixed-size values (no references into the
    source file's heap), the same chunk shape, dtype and filters everywhere."""
    if src_dset.chunks is None or src_dset.chunks[0] != 1 or src_dset.dtype.kind not in "biufcS":
        return False
    filters = _filters(src_dset)
    return all(d.chunks == src_dset.chunks and d.dtype == src_dset.dtype
               and _filters(d) == filters for d in dst_dsets)


def _chunk_offsets_in_row(dset):
    """Offsets, past the row index, of every chunk that makes up one row."""
    grids = [range(0, size, step) for size, step in zip(dset.shape[1:], dset.chunks[1:])]
    return [tuple(offset) for offset in itertools.product(*grids)]


def _copy_stored_chunks(src_dset, dst_dsets, wanted, a, offsets):
    """Copy the wanted rows of the block starting at row ``a`` chunk by chunk as stored; a chunk
    never written in the input stays unwritten (it reads as the same fill value)."""
    read = src_dset.id.read_direct_chunk
    writes = [d.id.write_direct_chunk for d in dst_dsets]
    in_row = _chunk_offsets_in_row(src_dset)
    for i, w in enumerate(wanted):
        for row in (a + np.flatnonzero(w)).tolist():
            for tail in in_row:
                try:
                    filter_mask, raw = read((row,) + tail)
                except (KeyError, OSError, RuntimeError):
                    if src_dset.id.get_chunk_info_by_coord((row,) + tail).byte_offset is None:
                        continue  # never written
                    raise  # a real read error is never taken for a fill value
                writes[i]((offsets[i],) + tail, raw, filter_mask=filter_mask)
            offsets[i] += 1


def _copy_values(src_dset, dst_dsets, wanted, a, offsets):
    """Copy the wanted rows of the block starting at row ``a`` through HDF5's filters."""
    b = a + len(wanted[0])
    if len(dst_dsets) == 1 and not wanted[0].all():
        # read only the runs of wanted rows (h5py point selections are slow)
        block = np.concatenate([src_dset[a + s:a + e] for s, e in _runs(wanted[0])])
        wanted = [None]
    else:
        block = src_dset[a:b]
    for i, (dst, w) in enumerate(zip(dst_dsets, wanted)):
        # one selection at a time: memory stays at the block plus one selection
        rows = block if w is None or w.all() else block[w]
        if len(rows):
            dst[offsets[i]:offsets[i] + len(rows)] = rows
            offsets[i] += len(rows)
        del rows


def _runs(mask):
    """(start, end) of every run of True in a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.view(np.int8), [0]])))
    return zip(edges[::2].tolist(), edges[1::2].tolist())


def rows_per_block(write_by, subsequence_length, log):
    """Rows read at a time for ``--write-by`` bases (at least one row)."""
    rows = write_by // subsequence_length
    if rows < 1:
        log.warning("--write-by %d is smaller than the subsequence length %d; writing one row "
                    "at a time", write_by, subsequence_length)
        rows = 1
    return rows


def row_label(seqid, start, end):
    """Human-readable name of a row: seqid:start-end(strand), forward coordinates."""
    sid = seqid.decode(errors="replace") if isinstance(seqid, bytes) else str(seqid)
    lo, hi = min(start, end), max(start, end)
    return f"{sid}:{lo}-{hi}({'+' if start < end else '-'})"
