"""filter-to-most-certain.py: pairing by coordinates, stratified selection, rows travel whole."""
import hashlib
import json

import h5py
import numpy as np
import pytest

from handmade_h5 import (assert_strand_blocks_contiguous, labels_for, layout, predictions_from,
                         read_rows, write_labels, write_predictions)
from helixtune_tools import filter_to_most_certain as ftm

L = 50


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_case(tmp, seqs, frac, error, n_bams=2, padding_first=False, coords_attr=True):
    """Labels in geenuff2h5 order (by length), predictions in FASTA order (as given)."""
    lab_rows = layout(seqs, L, order="length")
    pred_rows = layout(seqs, L, order="given")
    y = labels_for(lab_rows, L, frac)
    write_labels(tmp / "labels.h5", lab_rows, L, y, n_bams=n_bams)
    where = {r: i for i, r in enumerate(lab_rows)}
    perm = [where[r] for r in pred_rows]
    preds = predictions_from(y, error)[perm]
    write_predictions(tmp / "preds.h5", pred_rows, L, preds, tmp / "genome.h5",
                      coords_attr=coords_attr, padding_first=padding_first)
    return lab_rows


def run_filter(run_tool, tmp, *extra, out="out.h5"):
    code, err = run_tool(ftm.main, ["--h5-to-filter", tmp / "labels.h5", "--predictions",
                                    tmp / "preds.h5", "--output-file", tmp / out, *extra])
    return code, err


def test_pairs_by_coordinates_when_orders_differ(tmp_path, run_tool):
    # sequences of different length: geenuff2h5 order (by length) differs from FASTA order
    seqs = [("short", 30), ("long", 170), ("mid", 90)]
    lab_rows = layout(seqs, L)
    good = {r for r in lab_rows if r[0] == "short" or (r[0] == "long" and r[1] < r[2])}
    error = [0.0 if r in good else 0.3 for r in lab_rows]
    make_case(tmp_path, seqs, [1.0] * len(lab_rows), error)
    assert [r for r in layout(seqs, L, "given")] != lab_rows
    code, err = run_filter(run_tool, tmp_path, "--keep-fraction", str(len(good) / len(lab_rows)),
                           "--n-strata", "1")
    assert code == 0, err
    kept, order = read_rows(tmp_path / "out.h5")
    assert set(kept) == good
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["rows_kept"] == len(good)
    assert report["coordinates_from"] == str(tmp_path / "genome.h5")


def test_stratification_keeps_the_best_of_each_stratum(tmp_path, run_tool):
    # 12 one-row-pair sequences: 4 rows each at intergenic fraction 0.2, 0.5, 0.9.
    # The intergenic-rich rows are all predicted better than any other row: a global pick
    # would take only them; per stratum the best half of each level is kept.
    seqs = [(f"s{i:02d}", L) for i in range(6)]
    rows = layout(seqs, L)  # 12 rows
    frac = [0.2, 0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 0.5, 0.9, 0.9, 0.9, 0.9]
    error = [0.30, 0.10, 0.40, 0.20, 0.35, 0.45, 0.15, 0.25, 0.01, 0.02, 0.03, 0.04]
    make_case(tmp_path, seqs, frac, error)
    code, err = run_filter(run_tool, tmp_path, "--n-strata", "3", "--keep-fraction", "0.5")
    assert code == 0, err
    kept, order = read_rows(tmp_path / "out.h5")
    assert set(kept) == {rows[i] for i in (1, 3, 6, 7, 8, 9)}
    assert order == [r for r in rows if r in kept], "original row order is kept"
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert [(s["rows"], s["kept"]) for s in report["strata"]] == [(4, 2), (4, 2), (4, 2)]
    assert report["strata"][0]["max_kept_distance"] == pytest.approx(0.4, abs=1e-3)
    assert report["strata"][0]["min_dropped_distance"] == pytest.approx(0.6, abs=1e-3)
    assert "stratum" in err and "max kept dist" in err


def test_every_per_row_dataset_travels_with_its_row(tmp_path, run_tool):
    seqs = [("a", 120), ("b", 75), ("c", 20)]
    rows = layout(seqs, L)
    make_case(tmp_path, seqs, None, np.linspace(0, 0.4, len(rows)), n_bams=3)
    code, err = run_filter(run_tool, tmp_path, "--keep-fraction", "0.4", "--write-by", "120")
    assert code == 0, err
    src, _ = read_rows(tmp_path / "labels.h5")
    kept, order = read_rows(tmp_path / "out.h5")
    assert 0 < len(kept) < len(src)
    for key, row in kept.items():
        assert set(row) == set(src[key]) and "evaluation/rnaseq_coverage" in row
        for name, values in row.items():
            np.testing.assert_array_equal(values, src[key][name], err_msg=f"{key} {name}")
    assert_strand_blocks_contiguous(order)
    with h5py.File(tmp_path / "labels.h5") as a, h5py.File(tmp_path / "out.h5") as b:
        np.testing.assert_array_equal(a["evaluation/rnaseq_meta/bam_files"][:],
                                      b["evaluation/rnaseq_meta/bam_files"][:])
        for name in ("data/X", "evaluation/rnaseq_coverage", "data/seqids"):
            for prop in ("dtype", "chunks", "compression", "shuffle", "fillvalue"):
                assert getattr(a[name], prop) == getattr(b[name], prop), (name, prop)
        assert b.attrs["input_path"] == "handmade" and b.attrs["keep_fraction"] == "0.4"


def test_same_seed_byte_identical_and_seed_breaks_ties(tmp_path, run_tool):
    seqs = [(f"s{i}", 40) for i in range(20)]
    rows = layout(seqs, L)
    make_case(tmp_path, seqs, [1.0] * len(rows), [0.1] * len(rows))  # all tied
    outs = {}
    for name, seed, write_by in (("a", 1, 50), ("b", 1, 10_000), ("c", 2, 50)):
        (tmp_path / name).mkdir()
        code, err = run_filter(run_tool, tmp_path, "--seed", str(seed), "--write-by",
                               str(write_by), "--report", tmp_path / name / "r.json",
                               out=f"{name}/out.h5")
        assert code == 0, err
        outs[name] = (md5(tmp_path / name / "out.h5"), md5(tmp_path / name / "r.json"),
                      set(read_rows(tmp_path / name / "out.h5")[0]))
    assert outs["a"] == outs["b"], "same seed (any --write-by) gives byte-identical files"
    assert outs["a"][2] != outs["c"][2], "another seed breaks the ties differently"


@pytest.mark.parametrize("padding_first", [False, True])
def test_prediction_layout_detected(tmp_path, run_tool, padding_first):
    seqs = [("a", 130), ("b", 70), ("c", 33)]
    rows = layout(seqs, L)
    make_case(tmp_path, seqs, None, [0.05] * len(rows), padding_first=padding_first)
    code, err = run_filter(run_tool, tmp_path)
    assert code == 0, err
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["predictions_layout"] == ("padding-first" if padding_first else "aligned")
    # with the right layout every row scores 2 * 0.05
    for s in report["strata"]:
        assert s["max_kept_distance"] == pytest.approx(0.1, abs=2e-3)
    wrong = "aligned" if padding_first else "padding-first"
    code, err = run_filter(run_tool, tmp_path, "--predictions-layout", wrong, "--dry-run",
                           "--report", tmp_path / "wrong.json")
    assert code == 0, err
    worst = max(s["max_kept_distance"] or 0 for s in
                json.loads((tmp_path / "wrong.json").read_text())["strata"])
    assert worst > 0.1 or any(s["min_dropped_distance"] and s["min_dropped_distance"] > 0.2
                              for s in json.loads((tmp_path / "wrong.json").read_text())["strata"])


def test_dry_run_writes_no_h5(tmp_path, run_tool):
    seqs = [("a", 130), ("b", 70)]
    make_case(tmp_path, seqs, None, [0.1] * len(layout(seqs, L)))
    code, err = run_filter(run_tool, tmp_path, "--dry-run")
    assert code == 0, err
    assert not (tmp_path / "out.h5").exists() and (tmp_path / "out.report.json").exists()


def _unpaired(tmp):
    seqs = [("a", 130), ("b", 70)]
    rows = layout(seqs, L)
    y = labels_for(rows, L)
    write_labels(tmp / "labels.h5", rows, L, y)
    other = layout([("a", 130), ("c", 70)], L)
    write_predictions(tmp / "preds.h5", other, L, predictions_from(y, [0] * len(rows)),
                      tmp / "genome.h5")


def _other_length(tmp):
    rows = layout([("a", 130)], L)
    y = labels_for(rows, L)
    write_labels(tmp / "labels.h5", rows, L, y)
    rows2 = layout([("a", 130)], 65)
    write_predictions(tmp / "preds.h5", rows2, 65, np.zeros((len(rows2), 65, 4)), tmp / "g.h5")


def _no_coordinates(tmp):
    make_case(tmp, [("a", 130)], None, [0.1] * 6, coords_attr=False)


def _not_predictions(tmp):
    make_case(tmp, [("a", 130)], None, [0.1] * 6)
    (tmp / "preds.h5").unlink()
    write_labels(tmp / "preds.h5", layout([("a", 130)], L), L, labels_for(layout([("a", 130)], L), L))


def _not_labels(tmp):
    make_case(tmp, [("a", 130)], None, [0.1] * 6)
    (tmp / "labels.h5").write_text("not hdf5\n")


BAD = [
    (_unpaired, [], 1, "4 rows of", "c:0-50(+)"),
    (_other_length, [], 1, "subsequence length 50", "65"),
    (_no_coordinates, [], 1, "give --test-data", "carry no coordinates"),
    (_not_predictions, [], 1, "no 'predictions' dataset", "HybridModel"),
    (_not_labels, [], 1, "cannot read HDF5 input", "labels.h5"),
    (_no_coordinates, ["--keep-fraction", "0"], 2, "not in (0, 1]", "keep-fraction"),
    (_no_coordinates, ["--keep-fraction", "0.01"], 1, "keeps no row", "0.01"),
    (_no_coordinates, ["--output-file", "x.hdf5"], 2, "must end in .h5", "x.hdf5"),
]


@pytest.mark.parametrize("make,extra,code,msg1,msg2", BAD, ids=[b[0].__name__ + str(i)
                                                                for i, b in enumerate(BAD)])
def test_bad_input(tmp_path, run_tool, make, extra, code, msg1, msg2):
    make(tmp_path)
    if make is _no_coordinates and extra:  # give coordinates, so the option check is reached
        extra = extra + ["--test-data", tmp_path / "genome.h5"]
    rc, err = run_filter(run_tool, tmp_path, *extra)
    assert rc == code, err
    assert msg1 in err and msg2 in err, err
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "out.report.json").exists()
    assert not list(tmp_path.glob(".*.part"))


def best_rows(rows, error, k):
    """The k rows of smallest error (distinct errors; one stratum): the expected selection."""
    return {r for _, r in sorted(zip(error, rows))[:k]}


def test_test_data_option(tmp_path, run_tool):
    seqs = [("a", 130), ("b", 40)]
    rows = layout(seqs, L)  # 2 x 3 rows of a, 2 x 1 of b
    error = [0.07, 0.02, 0.11, 0.05, 0.13, 0.01, 0.09, 0.03]
    make_case(tmp_path, seqs, [0.5] * len(rows), error, coords_attr=False)
    code, err = run_filter(run_tool, tmp_path, "--test-data", tmp_path / "genome.h5",
                           "--n-strata", "1", "--keep-fraction", "0.5")
    assert code == 0, err
    kept, order = read_rows(tmp_path / "out.h5")
    assert set(kept) == best_rows(rows, error, 4)
    assert order == [r for r in rows if r in kept]


@pytest.mark.realdata
def test_mpusilla_real_predictions(shared_data, tmp_path, run_tool):
    """Upstream 0.3.6 predictions (FASTA order, padding-first) vs geenuff2h5 labels (by length)."""
    d = shared_data / "helixer_h5" / "upstream_0.3.6"
    out = tmp_path / "filtered.h5"
    code, err = run_tool(ftm.main, ["--h5-to-filter", d / "mpusilla.geenuff2h5.h5",
                                    "--predictions", d / "mpusilla.tiny_model.predictions.h5",
                                    "--test-data", d / "mpusilla.fasta2h5.h5",
                                    "--keep-fraction", "0.5", "--write-by", "6000000",
                                    "--output-file", out])
    assert code == 0, err
    report = json.loads((tmp_path / "filtered.report.json").read_text())
    assert report["predictions_layout"] == "padding-first"
    assert report["rows"] == 28 and report["rows_kept"] == 14
    assert sum(s["kept"] for s in report["strata"]) == 14
    src, _ = read_rows(d / "mpusilla.geenuff2h5.h5")
    kept, order = read_rows(out)
    assert_strand_blocks_contiguous(order)
    for key, row in kept.items():
        for name, values in row.items():
            np.testing.assert_array_equal(values, src[key][name])
    # the scores equal a direct computation with rows paired by coordinates
    with h5py.File(d / "mpusilla.fasta2h5.h5") as g, \
            h5py.File(d / "mpusilla.tiny_model.predictions.h5") as p, \
            h5py.File(d / "mpusilla.geenuff2h5.h5") as lab:
        where = {(s.decode(), int(a), int(b)): i
                 for i, (s, (a, b)) in enumerate(zip(g["data/seqids"][:], g["data/start_ends"][:]))}
        key = ("NW_003315901.1", 8981, 0)  # a padded minus row
        i = [k for k in src].index(key)
        y = lab["data/y"][i].astype(np.float64)
        pred = p["predictions"][where[key]].astype(np.float64)
        n = 8981
        expected = np.abs(y[:n] - pred[-n:]).sum() / n
    strata_max = max(s["max_kept_distance"] for s in report["strata"])
    assert expected > 0 and strata_max > 0
    row = ftm.score_rows(y[None].astype(np.int8), pred[None].astype(np.float16),
                         np.array([21384 - n]))
    assert row[0][0] / row[1][0] == pytest.approx(expected, rel=1e-3)


def test_distances_accumulate_without_float16_rounding():
    """Upstream sums float16 over 21384 positions (spacing 8-32 at the top); we use float32+."""
    Lr = 21384
    rng = np.random.default_rng(3)
    y = np.zeros((2, Lr, 4), dtype=np.int8)
    y[0, :, 0] = 1
    y[1, :15000, 2] = 1  # 6384 bases of padding
    p = rng.dirichlet(np.ones(4), size=(2, Lr)).astype(np.float16)
    dist, valid, intergenic = ftm.score_rows(y, p, np.zeros(2, dtype=np.int64))
    for r in range(2):
        n = int(y[r].any(-1).sum())
        exact = np.abs(y[r, :n].astype(np.float64) - p[r, :n].astype(np.float64)).sum()
        assert dist[r] == pytest.approx(exact, rel=1e-6)
        assert valid[r] == n
    assert intergenic.tolist() == [Lr, 0]
    f16 = np.abs(y[0].astype(np.float16) - p[0]).sum(axis=0, dtype=np.float16).sum(dtype=np.float16)
    assert abs(float(f16) - dist[0]) > 1e-6 * dist[0], "float16 sums would differ"


def test_coordinates_inside_the_predictions_file(tmp_path, run_tool):
    seqs = [("x", 20), ("y", 120)]
    rows = layout(seqs, L)
    error = [0.05 * (k + 1) for k in (3, 0, 7, 2, 5, 1, 6, 4)][:len(rows)]
    make_case(tmp_path, seqs, None, error, coords_attr=False)
    given = layout(seqs, L, "given")
    with h5py.File(tmp_path / "preds.h5", "a") as h5:
        h5.create_dataset("data/seqids", data=np.array([r[0].encode() for r in given], "S50"))
        h5.create_dataset("data/start_ends", data=np.array([r[1:] for r in given], np.int64))
    code, err = run_filter(run_tool, tmp_path, "--n-strata", "1")
    assert code == 0, err
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["coordinates_from"] == str(tmp_path / "preds.h5")
    assert report["rows"] == len(rows) == 8
    kept, _ = read_rows(tmp_path / "out.h5")
    assert set(kept) == best_rows(rows, error, 4)  # the default --keep-fraction 0.5


def _reference_scores(y, p, shifts):
    """score_rows written plainly: whole-array sums over the class axis."""
    p = p.astype(np.float32)
    for r, shift in enumerate(shifts):
        if shift:
            p[r] = np.roll(p[r], -int(shift), axis=0)
    valid = y.any(axis=-1)
    p[~valid] = 0
    per_base = np.abs(y.astype(np.float32) - p).sum(axis=-1)
    return (per_base.sum(axis=1, dtype=np.float64), valid.sum(axis=1),
            y[..., 0].sum(axis=1, dtype=np.int64))


@pytest.mark.parametrize("contiguous", [True, False])
def test_score_rows_bit_identical_to_plain_sums(contiguous):
    rng = np.random.default_rng(4)
    n, L = ftm.SUB_BATCH + 5, 300
    y = np.eye(4, dtype=np.int8)[rng.integers(0, 4, (n, L))]
    y[:, 250:] = 0   # padding
    p = rng.dirichlet(np.ones(4), (n, L)).astype(np.float16)
    if not contiguous:
        y, p = y[:, ::-1], p[:, ::-1]
    shifts = np.zeros(n, np.int64)
    shifts[[2, n - 1]] = [50, 299]
    for got, want in zip(ftm.score_rows(y, p, shifts), _reference_scores(y, p, shifts)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
