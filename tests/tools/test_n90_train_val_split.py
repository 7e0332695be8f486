"""n90_train_val_split.py: whole sequences (or blocks) to one side, N90 groups, reproducibility."""
import csv
import pathlib
import hashlib

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handmade_h5 import (assert_strand_blocks_contiguous, labels_for, layout, read_rows,
                         write_labels)
from helixtune_tools import n90_train_val_split as split

L = 10


def make(path, seqs, n_bams=2, L=L):
    rows = layout(seqs, L)
    write_labels(path, rows, L, labels_for(rows, L), n_bams=n_bams)
    return rows


def run_split(run_tool, src, pfx, *extra):
    return run_tool(split.main, ["--h5-to-split", src, "--output-pfx", pfx, *extra])


def outputs(pfx):
    train, train_order = read_rows(f"{pfx}training_data.h5")
    val, val_order = read_rows(f"{pfx}validation_data.h5")
    with open(f"{pfx}train_val_assignment.tsv") as fh:
        tsv = list(csv.DictReader(fh, delimiter="\t"))
    return train, train_order, val, val_order, tsv


def md5s(pfx):
    return [hashlib.md5(open(f"{pfx}{n}", "rb").read()).hexdigest()
            for n in ("training_data.h5", "validation_data.h5", "train_val_assignment.tsv")]


def test_upstream_example_groups(tmp_path, run_tool):
    """Counts 20,12,8,4,4,2,2,2 subsequences: long group s1-s5, short s6-s8; one of each to val."""
    counts = [20, 12, 8, 4, 4, 2, 2, 2]
    seqs = [(f"s{i + 1}", c // 2 * L) for i, c in enumerate(counts)]
    rows = make(tmp_path / "in.h5", seqs)
    code, err = run_split(run_tool, tmp_path / "in.h5", f"{tmp_path}/")
    assert code == 0, err
    train, train_order, val, val_order, tsv = outputs(f"{tmp_path}/")
    groups = {r["seqid"]: r["group"] for r in tsv}
    assert groups == {f"s{i}": "long" if i <= 5 else "short" for i in range(1, 9)}
    val_seqs = {r["seqid"] for r in tsv if r["set"] == "validation"}
    assert len(val_seqs) == 2 and len({groups[s] for s in val_seqs}) == 2
    # whole sequences: disjoint, covering, original order, strand blocks contiguous
    assert not set(train) & set(val) and set(train) | set(val) == set(rows)
    assert {k[0] for k in val} == val_seqs and not val_seqs & {k[0] for k in train}
    assert train_order == [r for r in rows if r in train]
    assert val_order == [r for r in rows if r in val]
    assert_strand_blocks_contiguous(train_order)
    assert_strand_blocks_contiguous(val_order)
    sizes = {r["seqid"]: int(r["rows"]) for r in tsv}
    assert sizes == {f"s{i + 1}": c for i, c in enumerate(counts)}


def test_rows_travel_and_metadata_copied(tmp_path, run_tool):
    rows = make(tmp_path / "in.h5", [(f"c{i}", 25 + 7 * i) for i in range(10)], n_bams=3)
    code, err = run_split(run_tool, tmp_path / "in.h5", f"{tmp_path}/run1_", "--write-by", "25")
    assert code == 0, err
    src, _ = read_rows(tmp_path / "in.h5")
    train, _, val, _, _ = outputs(f"{tmp_path}/run1_")
    for part in (train, val):
        for key, row in part.items():
            assert "evaluation/rnaseq_spliced_coverage" in row
            for name, values in row.items():
                np.testing.assert_array_equal(values, src[key][name], err_msg=f"{key} {name}")
    for name in ("training_data.h5", "validation_data.h5"):
        with h5py.File(tmp_path / "in.h5") as a, h5py.File(tmp_path / f"run1_{name}") as b:
            np.testing.assert_array_equal(a["evaluation/rnaseq_meta/bam_files"][:],
                                          b["evaluation/rnaseq_meta/bam_files"][:])
            assert b.attrs["input_path"] == "handmade"
            assert b.attrs["n90_split_set"] == name.split("_")[0]


def test_seed_reproducible_and_changes_split(tmp_path, run_tool):
    make(tmp_path / "in.h5", [(f"c{i:02d}", 30 + i) for i in range(30)])
    results = {}
    for name, seed, write_by in (("a", 5, 10), ("b", 5, 1000), ("c", 6, 10)):
        (tmp_path / name).mkdir()
        code, err = run_split(run_tool, tmp_path / "in.h5", f"{tmp_path / name}/", "--seed",
                              str(seed), "--write-by", str(write_by))
        assert code == 0, err
        results[name] = md5s(f"{tmp_path / name}/")
    assert results["a"] == results["b"], "same seed gives byte-identical outputs"
    assert results["a"][2] != results["c"][2], "another seed gives another split"


def test_val_fraction(tmp_path, run_tool):
    make(tmp_path / "in.h5", [(f"c{i:02d}", 40) for i in range(20)])
    code, err = run_split(run_tool, tmp_path / "in.h5", f"{tmp_path}/", "--val-fraction", "0.5")
    assert code == 0, err
    tsv = outputs(f"{tmp_path}/")[4]
    assert sum(r["set"] == "validation" for r in tsv) == 10


def test_single_sequence_fails_with_explanation(tmp_path, run_tool):
    make(tmp_path / "in.h5", [("chr1", 500)])
    code, err = run_split(run_tool, tmp_path / "in.h5", f"{tmp_path}/")
    assert code == 1
    assert "validation would be empty" in err and "--split-within-sequences" in err
    assert "over-fitting" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.h5"]


def test_split_within_sequences_keeps_strands_of_a_region_together(tmp_path, run_tool):
    rows = make(tmp_path / "in.h5", [("chr1", 503), ("chr2", 95)])
    code, err = run_split(run_tool, tmp_path / "in.h5", f"{tmp_path}/",
                          "--split-within-sequences", "--block-length", "40")
    assert code == 0, err
    train, train_order, val, val_order, tsv = outputs(f"{tmp_path}/")
    assert val and train and not set(train) & set(val) and set(train) | set(val) == set(rows)
    for part in (train, val):
        for seqid, s, e in part:
            assert (seqid, e, s) in part, "both strands of a region go to the same side"
    for row in tsv:  # blocks are cut at subsequence boundaries and hold 4 subsequences
        assert int(row["start"]) % 40 == 0 and int(row["end"]) - int(row["start"]) <= 40
        assert int(row["rows"]) == 2 * -(-(int(row["end"]) - int(row["start"])) // L)
    assert train_order == [r for r in rows if r in train]
    assert_strand_blocks_contiguous(val_order)


@pytest.mark.parametrize("pfx,code,msg", [
    ("missing/", 1, "directory does not exist"),
    ("outdir", 2, "add a trailing slash"),
    ("missing/run_", 1, "does not exist"),
])
def test_output_prefix_errors(tmp_path, run_tool, monkeypatch, pfx, code, msg):
    make(tmp_path / "in.h5", [(f"c{i}", 30) for i in range(6)])
    (tmp_path / "outdir").mkdir()
    monkeypatch.chdir(tmp_path)
    rc, err = run_split(run_tool, tmp_path / "in.h5", pfx)
    assert rc == code and msg in err, err
    assert not list(tmp_path.glob("*training*")) and not list((tmp_path / "outdir").iterdir())


def test_bad_options(tmp_path, run_tool):
    make(tmp_path / "in.h5", [(f"c{i}", 30) for i in range(6)])
    for extra, msg in ((["--val-fraction", "1"], "not in (0, 1)"),
                       (["--write-by", "0"], "not a positive integer")):
        rc, err = run_split(run_tool, tmp_path / "in.h5", f"{tmp_path}/", *extra)
        assert rc == 2 and msg in err
    (tmp_path / "bad.h5").write_text("no hdf5")
    rc, err = run_split(run_tool, tmp_path / "bad.h5", f"{tmp_path}/")
    assert rc == 1 and "cannot read" in err and "bad.h5" in err
    assert not list(tmp_path.glob("*training*"))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(1, 80), min_size=1, max_size=8),
       block=st.integers(1, 60), seed=st.integers(0, 5), within=st.booleans())
def test_property_disjoint_cover_ordered(tmp_path_factory, lengths, block, seed, within):
    tmp = tmp_path_factory.mktemp("p")
    rows = make(tmp / "in.h5", [(f"s{i}", n) for i, n in enumerate(lengths)], n_bams=0)
    argv = ["--h5-to-split", str(tmp / "in.h5"), "--output-pfx", f"{tmp}/", "--seed", str(seed),
            "--write-by", "30", "--quiet"]
    if within:
        argv += ["--split-within-sequences", "--block-length", str(block)]
    try:
        assert split.main(argv) == 0
    except split.cli.UserError as e:
        assert "validation would be empty" in str(e)
        return
    train, train_order, val, val_order, tsv = outputs(f"{tmp}/")
    assert val and train and not set(train) & set(val) and set(train) | set(val) == set(rows)
    assert train_order == [r for r in rows if r in train]
    assert val_order == [r for r in rows if r in val]
    if not within:
        assert not {k[0] for k in train} & {k[0] for k in val}
    assert sum(int(r["rows"]) for r in tsv) == len(rows)


@pytest.mark.realdata
def test_spombe_chr1(shared_data, tmp_path, run_tool):
    """One chromosome: the plain split fails and explains; blocks give a sound split."""
    src = shared_data / "helixer_h5" / "upstream_0.3.6" / "spombe_chrI.geenuff2h5.rnaseq.h5"
    code, err = run_split(run_tool, src, f"{tmp_path}/", "--write-by", "500000")
    assert code == 1 and "validation would be empty" in err and "--split-within-sequences" in err
    assert not list(tmp_path.iterdir())
    code, err = run_split(run_tool, src, f"{tmp_path}/", "--write-by", "500000",
                          "--split-within-sequences")
    assert code == 0, err
    with h5py.File(src) as h5:
        keys = {(s.decode(), int(a), int(b)) for s, (a, b) in zip(h5["data/seqids"][:],
                                                                   h5["data/start_ends"][:])}
    parts = []
    for name in ("training_data.h5", "validation_data.h5"):
        with h5py.File(tmp_path / name) as h5:
            parts.append({(s.decode(), int(a), int(b)) for s, (a, b) in
                          zip(h5["data/seqids"][:], h5["data/start_ends"][:])})
            assert h5["evaluation/rnaseq_coverage"].shape[0] == len(parts[-1])
            assert h5["evaluation/rnaseq_meta/bam_files"].shape == (5,)
            assert h5["data/X"].shape[0] == len(parts[-1])
    train, val = parts
    assert train and val and not train & val and train | val == keys
    # the rows' values travel unchanged (they are copied as stored chunks): every 25th row
    with h5py.File(src) as h5, h5py.File(tmp_path / "training_data.h5") as out:
        def row_keys(f):
            return [(s, int(a), int(b)) for s, (a, b) in zip(f["data/seqids"][:],
                                                            f["data/start_ends"][:])]
        order = {k: i for i, k in enumerate(row_keys(h5))}
        assert len(order) == len(h5["data/seqids"])
        rows = [order[k] for k in row_keys(out)]
        for name in ("data/X", "data/y", "evaluation/rnaseq_coverage"):
            for out_row in range(0, len(rows), 25):
                np.testing.assert_array_equal(out[name][out_row], h5[name][rows[out_row]],
                                              err_msg=name)


def test_galaxy_test_data_is_made_by_the_project(tmp_path, run_tool):
    """galaxy/test-data/{pseudolabels,predictions,genome,scaffolds,one_chromosome}.h5 come from
    tests/tools/handmade_h5.py, and the expected assignment table from the tool itself."""
    from handmade_h5 import galaxy_test_data
    root = pathlib.Path(__file__).resolve().parents[2] / "galaxy" / "test-data"
    galaxy_test_data(tmp_path)
    for name in ("pseudolabels.h5", "predictions.h5", "genome.h5", "scaffolds.h5",
                 "one_chromosome.h5", "predictions_with_coordinates.h5"):
        with h5py.File(tmp_path / name) as new, h5py.File(root / name) as old:
            names = []
            old.visititems(lambda k, o: names.append(k) if isinstance(o, h5py.Dataset) else None)
            assert names
            for k in names:
                np.testing.assert_array_equal(new[k][()], old[k][()], err_msg=f"{name} {k}")
    code, err = run_split(run_tool, root / "pseudolabels.h5", f"{tmp_path}/", "--seed", "3",
                          "--split-within-sequences", "--block-length", "36")
    assert code == 0, err
    assert (tmp_path / "train_val_assignment.tsv").read_text() == \
        (root / "split_within_assignment.tsv").read_text()


def test_one_sequence_per_size_group_fails_with_group_sizes(tmp_path, run_tool):
    """12 + 2 subsequences: the long sequence alone holds 90 %; each group has one sequence."""
    make(tmp_path / "in.h5", [("big", 6 * L), ("small", L)])
    code, err = run_split(run_tool, tmp_path / "in.h5", f"{tmp_path}/")
    assert code == 1 and "long group 1, short group 1" in err and "--split-within-sequences" in err
    code, err = run_split(run_tool, tmp_path / "in.h5", f"{tmp_path}/", "--split-within-sequences",
                          "--block-length", str(2 * L))
    assert code == 0, err
