"""Floors of the row-copying tools: the least I/O any implementation must do, with h5py alone."""
import itertools

import h5py


def per_row_datasets(src, n):
    names = []
    src.visititems(lambda k, o: names.append(k) if isinstance(o, h5py.Dataset)
                   and o.shape[0] == n else None)
    return names


def create_like(out, name, dset, rows):
    return out.create_dataset(name, shape=(rows,) + dset.shape[1:], dtype=dset.dtype,
                              chunks=dset.chunks, compression=dset.compression,
                              shuffle=dset.shuffle, maxshape=(None,) + dset.shape[1:])


def copy_through_filters(dset, out_dset, lo, hi, step):
    """Rows lo .. hi - 1 inflated and compressed again (h5py's read and write)."""
    for a in range(lo, hi, step):
        b = min(a + step, hi)
        out_dset[a - lo:b - lo] = dset[a:b]


def copy_stored(dset, out_dset, lo, hi):
    """Rows lo .. hi - 1 of a one-row-per-chunk dataset as stored (compressed) chunks."""
    grids = [range(0, s, c) for s, c in zip(dset.shape[1:], dset.chunks[1:])]
    tails = list(itertools.product(*grids))
    for row in range(lo, hi):
        for tail in tails:
            mask, raw = dset.id.read_direct_chunk((row,) + tail)
            out_dset.id.write_direct_chunk((row - lo,) + tail, raw, filter_mask=mask)
