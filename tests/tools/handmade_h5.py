"""Small hand-made Helixer HDF5 files for tests, written with plain h5py/numpy (independent of
lib/helixtune/h5layout.py, whose row layout and storage they check; see spec helixer-formats).

Every row carries its identity in ``data/gene_lengths`` and the coverage datasets (a number made
from the row's key), so a test can check that all per-row datasets travel together.
"""
import h5py
import numpy as np


def start_ends(length, L):
    """Helixer's rows of one sequence: plus rows 5'->3' ([k*L, min((k+1)*L, length))), then the
    same pieces as minus rows (end, start) in reverse order."""
    plus = [(s, min(s + L, length)) for s in range(0, length, L)]
    return plus + [(e, s) for s, e in reversed(plus)]


def row_dataset(group, name, values, compression="gzip"):
    """``group/name`` = values with Helixer's storage: one row per chunk, resizable rows, shuffle
    for datasets of more than one dimension."""
    values = np.asarray(values)
    tail = values.shape[1:]
    return group.create_dataset(name, data=values, maxshape=(None,) + tail, chunks=(1,) + tail,
                                compression=compression, shuffle=values.ndim > 1)


def row_id(seqid, start, end):
    """A per-row number (fits uint32) derived from the row key."""
    return (sum(seqid.encode()) * 7919 + int(start) * 31 + int(end) * 17) % 1_000_003 + 1


def layout(seqs, L, order="length"):
    """(seqid, start, end) of every row; sequences by descending length (geenuff2h5) or as given."""
    if order == "length":
        seqs = sorted(seqs, key=lambda s: -s[1])
    rows = []
    for seqid, length in seqs:
        for s, e in start_ends(length, L):
            rows.append((seqid, s, e))
    return rows


def labels_for(rows, L, frac_intergenic=None, rng=None):
    """One-hot y for every row: the first round(f*n) valid bases intergenic, the rest CDS
    (padding all zero; padding last)."""
    rng = rng or np.random.default_rng(0)
    y = np.zeros((len(rows), L, 4), dtype=np.int8)
    for i, (_, s, e) in enumerate(rows):
        n = abs(e - s)
        f = frac_intergenic[i] if frac_intergenic is not None else rng.uniform()
        k = int(round(f * n))
        y[i, :k, 0] = 1
        y[i, k:n, 2] = 1
    return y


def write_labels(path, rows, L, y, species="sp", n_bams=0, extra_attrs=None):
    """A geenuff2h5-like file (+ add_ngs_coverage datasets when n_bams > 0)."""
    n = len(rows)
    valid = y.any(-1)
    ids = np.array([row_id(*r) for r in rows], dtype=np.uint32)
    with h5py.File(path, "w") as h5:
        data = h5.create_group("data")
        X = np.zeros((n, L, 4), dtype=np.float16)
        X[..., 1] = valid
        row_dataset(data, "X", X)
        row_dataset(data, "y", y)
        phases = np.zeros((n, L, 4), dtype=np.int8)
        phases[..., 0] = valid
        row_dataset(data, "phases", phases)
        row_dataset(data, "sample_weights", valid.astype(np.int8))
        row_dataset(data, "transitions", np.zeros((n, L, 6), dtype=np.int8))
        row_dataset(data, "gene_lengths", (valid * ids[:, None]).astype(np.uint32))
        row_dataset(data, "err_samples", valid.any(1))
        row_dataset(data, "fully_intergenic_samples", ~(y[..., 0] == 1).any(1))
        row_dataset(data, "is_annotated", np.ones(n, dtype=bool))
        row_dataset(data, "species", np.array([species.encode()] * n, dtype="S25"))
        row_dataset(data, "seqids", np.array([r[0].encode() for r in rows], dtype="S50"))
        row_dataset(data, "start_ends",
                    np.array([[r[1], r[2]] for r in rows], dtype=np.int64).reshape(n, 2))
        if n_bams:
            ev = h5.create_group("evaluation")
            for name in ("rnaseq_coverage", "rnaseq_spliced_coverage"):
                d = ev.create_dataset(name, shape=(n, L, n_bams), maxshape=(None, L, None),
                                      chunks=(1, L, 1), dtype=np.int64, fillvalue=-1,
                                      compression="lzf", shuffle=True)
                cov = np.full((n, L, n_bams), -1, dtype=np.int64)
                for b in range(n_bams):
                    # uint32 max, not -1, where not valid: what the committed galaxy/test-data
                    # files hold (numpy < 2.5 silently wrapped the -1 given here before)
                    cov[..., b] = np.where(valid, ids[:, None] + b, np.uint32(2**32 - 1))
                if n:
                    d[:] = cov
            ev.create_dataset("rnaseq_meta/bam_files",
                              data=np.array([f"bam{b}.bam".encode() for b in range(n_bams)],
                                            dtype="S512"))
        h5.attrs["timestamp"] = "2026-01-01 00:00:00"
        h5.attrs["input_path"] = "handmade"
        for k, v in (extra_attrs or {}).items():
            h5.attrs[k] = v


def predictions_from(y, error, rng=None):
    """Predictions that differ from one-hot y by ``error[i]`` per class pair: the true class gets
    1-e, another class e, so the mean L1 distance of row i is 2*e."""
    p = y.astype(np.float32) * (1 - np.asarray(error, dtype=np.float32)[:, None, None])
    shifted = np.roll(y, 1, axis=-1).astype(np.float32)
    p += shifted * np.asarray(error, dtype=np.float32)[:, None, None]
    return p


def write_predictions(path, rows, L, preds, coords_path=None, coords_attr=True,
                      padding_first=False):
    """A HybridModel-like predictions file for ``rows`` (in this order), plus a fasta2h5-like
    coordinates file ``coords_path`` (referenced by the ``test_data_path`` attribute).

    ``padding_first`` stores padded minus rows Helixer-0.3.6-style (values at the end)."""
    p = preds.astype(np.float16).copy()
    if padding_first:
        for i, (_, s, e) in enumerate(rows):
            n = abs(e - s)
            if s > e and n < L:
                p[i] = np.roll(p[i], L - n, axis=0)
                p[i, :L - n] = 0.25  # what a model says for all-zero input
    with h5py.File(path, "w") as h5:
        h5.create_dataset("predictions", data=p, chunks=(1, L, 4), maxshape=(None, L, 4),
                          compression="gzip", shuffle=True)
        h5.attrs["timestamp"] = "2026-01-01 00:00:00"
        if coords_path is not None and coords_attr:
            h5.attrs["test_data_path"] = str(coords_path)
    if coords_path is not None:
        n = len(rows)
        with h5py.File(coords_path, "w") as h5:
            data = h5.create_group("data")
            for name, values in (
                    ("seqids", np.array([r[0].encode() for r in rows], dtype="S50")),
                    ("species", np.array([b"sp"] * n, dtype="S25")),
                    ("start_ends", np.array([[r[1], r[2]] for r in rows], dtype=np.int64))):
                row_dataset(data, name, values)
            row_dataset(data, "X", np.zeros((n, L, 4), dtype=np.float16))


def read_rows(path):
    """{(seqid, start, end): {dataset name: row}} of every per-row dataset, plus the key order."""
    out, order = {}, []
    with h5py.File(path, "r") as h5:
        n = len(h5["data/seqids"])
        names = []
        h5.visititems(lambda name, o: names.append(name)
                      if isinstance(o, h5py.Dataset) and o.shape and o.shape[0] == n
                      and "meta" not in name else None)
        arrays = {name: h5[name][:] for name in names}
        for i, (sid, (s, e)) in enumerate(zip(arrays["data/seqids"], arrays["data/start_ends"])):
            key = (sid.decode(), int(s), int(e))
            order.append(key)
            out[key] = {name: a[i] for name, a in arrays.items()}
    return out, order


def assert_strand_blocks_contiguous(order):
    """Rows of each (seqid, strand) form one contiguous run."""
    runs, last = set(), None
    for seqid, s, e in order:
        block = (seqid, s < e)
        if block != last:
            assert block not in runs, f"rows of {block} are not contiguous"
            runs.add(block)
            last = block


def galaxy_test_data(directory):
    """The tiny inputs of galaxy/filter_to_most_certain.xml and galaxy/n90_train_val_split.xml:
    ``python tests/tools/handmade_h5.py galaxy/test-data`` (re)makes them."""
    import pathlib
    d = pathlib.Path(directory)
    L = 18
    seqs = [("chr3", 33), ("chr1", 130), ("chr2", 70)]  # FASTA order; geenuff2h5 sorts by length
    rows = layout(seqs, L)
    y = labels_for(rows, L, rng=np.random.default_rng(7))
    write_labels(d / "pseudolabels.h5", rows, L, y, n_bams=2)
    given = layout(seqs, L, order="given")
    where = {r: i for i, r in enumerate(rows)}
    error = np.random.default_rng(8).uniform(0, 0.4, len(rows))
    preds = predictions_from(y, error)[[where[r] for r in given]]
    write_predictions(d / "predictions.h5", given, L, preds, d / "genome.h5", coords_attr=False,
                      padding_first=True)
    write_predictions(d / "predictions_with_coordinates.h5", given, L, preds, None,
                      padding_first=True)
    with h5py.File(d / "predictions_with_coordinates.h5", "a") as h5:
        h5.create_dataset("data/seqids", data=np.array([r[0].encode() for r in given], "S50"))
        h5.create_dataset("data/start_ends", data=np.array([r[1:] for r in given], np.int64))
    many = [(f"scaffold_{i}", 40 + 9 * i) for i in range(8)]
    rows = layout(many, L)
    write_labels(d / "scaffolds.h5", rows, L, labels_for(rows, L, rng=np.random.default_rng(9)),
                 n_bams=1)
    rows = layout([("chrI", 100)], L)
    write_labels(d / "one_chromosome.h5", rows, L, labels_for(rows, L, rng=np.random.default_rng(1)))


if __name__ == "__main__":
    import sys
    galaxy_test_data(sys.argv[1])
