"""add_ngs_coverage.py: base-by-base against a hand-made BAM, upstream Helixer 0.3.6 on S. pombe,
strandedness check, atomicity (kill test), bad input."""
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helixtune import lzfchunks
from helixtune_tools import add_ngs_coverage as anc

import coverage_data as cd

MODES = {"second": "--second-read-is-sense-strand", "first": "--first-read-is-sense-strand",
         "unstranded": "--unstranded"}
UPSTREAM = "helixer_h5/upstream_0.3.6/spombe_chrI.geenuff2h5.rnaseq.h5"
POMBE_BAMS = ["Sp_ds", "Sp_hs", "Sp_log", "Sp_plat", "SP2_top100k"]


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def tiny(tmp_path):
    h5 = cd.make_h5(tmp_path / "tiny.h5")
    bam = cd.make_bam(tmp_path / "reads.bam")
    return h5, bam


def check_file(h5path, species, column_reads, mode, shift=False, prefix="cage", sequences=cd.SEQUENCES):
    """Every column equals the per-base reference of its reads; bam_files lists them in order."""
    with h5py.File(h5path) as h5:
        cov = h5[f"evaluation/{prefix}_coverage"]
        spl = h5[f"evaluation/{prefix}_spliced_coverage"]
        for d in (cov, spl):
            assert d.dtype == np.int64 and d.fillvalue == -1 and d.compression == "lzf"
            assert d.shuffle and d.chunks == (1, cd.L, 1) and d.maxshape == (None, cd.L, None)
        assert cov.shape[2] == len(column_reads)
        for j, reads in enumerate(column_reads):
            per_seq = cd.expected_coverage(reads, sequences, mode, shift)
            np.testing.assert_array_equal(cov[:, :, j], cd.expected_rows(h5path, species, per_seq, 0),
                                          err_msg=f"coverage column {j}")
            np.testing.assert_array_equal(spl[:, :, j], cd.expected_rows(h5path, species, per_seq, 1),
                                          err_msg=f"spliced column {j}")


@pytest.mark.parametrize("mode", list(MODES))
def test_hand_made_bam_base_by_base(tiny, run_tool, mode):
    h5, bam = tiny
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, MODES[mode], "--threads", 1])
    assert code == 0, err
    check_file(h5, "tiny", [cd.READS], mode)
    with h5py.File(h5) as f:
        assert f["evaluation/cage_meta/bam_files"][:].tolist() == [str(bam).encode()]
        assert f["evaluation/cage_meta/bam_files"].dtype == "S512"
        # the other species' rows (chrB, rows 0-1) stay -1 although the BAM has reads there
        assert (f["evaluation/cage_coverage"][0:2] == -1).all()
    assert "1 unmapped, 1 secondary, 1 QC-fail" in err
    assert "2 BAM references are not sequences of this species" in err
    assert "strandedness check skipped: the file has no annotation (data/y)" in err


def test_shift_atac(tiny, run_tool):
    h5, bam = tiny
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, "--unstranded", "--shift"])
    assert code == 0, err
    check_file(h5, "tiny", [cd.READS], "unstranded", shift=True)


def test_two_bams_then_rerun_appends(tmp_path, run_tool):
    h5 = cd.make_h5(tmp_path / "tiny.h5", with_y=True)
    second = [r for r in cd.READS if r[0] not in ("splice", "deletion")] + [("extra", 0, "chr2", 2, "2M")]
    b1 = cd.make_bam(tmp_path / "a.bam")
    b2 = cd.make_bam(tmp_path / "b.bam", reads=second)
    args = ["-s", "tiny", "-d", h5, "--dataset-prefix", "rnaseq", "--second-read-is-sense-strand"]
    code, err = run_tool(anc.main, args + ["-b", b1, b2, "--threads", 2])
    assert code == 0, err
    before = {}
    with h5py.File(h5) as f:
        before = {k: f["data"][k][:] for k in f["data"]}
    code, err = run_tool(anc.main, args + ["-b", b2])
    assert code == 0, err
    check_file(h5, "tiny", [cd.READS, second, second], "second", prefix="rnaseq")
    with h5py.File(h5) as f:
        assert f["evaluation/rnaseq_meta/bam_files"][:].tolist() == [str(b).encode() for b in (b1, b2, b2)]
        for k, v in before.items():
            np.testing.assert_array_equal(f["data"][k][:], v)


def test_threads_same_result(tmp_path, run_tool):
    outs = []
    bam = cd.make_bam(tmp_path / "r.bam")
    for t in (1, 3):
        h5 = cd.make_h5(tmp_path / f"t{t}.h5")
        assert run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, bam, "--unstranded",
                                   "--threads", t])[0] == 0
        with h5py.File(h5) as f:
            outs.append((f["evaluation/cage_coverage"][:], f["evaluation/cage_spliced_coverage"][:]))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_slow_path_equals_direct_chunks(tiny, run_tool, monkeypatch):
    """Chunks written pre-filtered read back the same as h5py's own filter pipeline."""
    h5, bam = tiny
    assert run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, "--unstranded"])[0] == 0
    monkeypatch.setattr(anc, "_fast_path", lambda d: False)
    assert run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, "--unstranded"])[0] == 0
    with h5py.File(h5) as f:
        for name in ("cage_coverage", "cage_spliced_coverage"):
            d = f["evaluation"][name][:]
            np.testing.assert_array_equal(d[..., 0], d[..., 1])


def test_unindexed_and_unsorted_bam(tmp_path, run_tool):
    h5 = cd.make_h5(tmp_path / "tiny.h5")
    unindexed = cd.make_bam(tmp_path / "noindex.bam", index=False)
    unsorted = cd.make_bam(tmp_path / "unsorted.bam", sort=False,
                           reads=list(reversed(cd.READS)))
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", unindexed, unsorted, "--unstranded"])
    assert code == 0, err
    assert "has no index" in err and f"samtools index {unindexed}" in err
    assert "not sorted by coordinate" in err and "samtools sort" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noindex.bam", "tiny.h5", "unsorted.bam"]
    check_file(h5, "tiny", [cd.READS, cd.READS], "unstranded")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_reads_property(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("prop")
    ops = st.sampled_from(["M", "D", "N", "I", "S", "=", "X"])
    reads = []
    for k in range(data.draw(st.integers(0, 25))):
        ref, n = data.draw(st.sampled_from([("chr1", 25), ("chr2", 7)]))
        body = data.draw(st.lists(st.tuples(st.integers(1, 6), ops), min_size=0, max_size=4))
        cigar = "".join(f"{c}{o}" for c, o in body if o not in "S") + "1M"
        flag = data.draw(st.sampled_from([0, 16, 65, 81, 129, 145, 161, 177, 256, 512, 1024, 2048]))
        reads.append((f"r{k}", flag, ref, data.draw(st.integers(0, n - 1)), cigar))
    mode = data.draw(st.sampled_from(list(MODES)))
    h5 = cd.make_h5(tmp / "t.h5")
    bam = cd.make_bam(tmp / "r.bam", reads=reads)
    assert anc.main(["-s", "tiny", "-d", str(h5), "-b", str(bam), MODES[mode], "--quiet",
                     "--threads", "1"]) == 0
    check_file(h5, "tiny", [reads], mode)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(st.tuples(st.sampled_from([-1, 0, 1, 2, 255, 256, 65535, 2 ** 33, 2 ** 62]),
                                        st.integers(1, 700)), min_size=1, max_size=12),
                     min_size=1, max_size=4))
def test_lzf_chunks_round_trip(tmp_path_factory, rows):
    """Pre-filtered chunks decode (pure-Python LZF and HDF5's lzf filter) to the runs."""
    L = max(sum(n for _, n in r) for r in rows)
    rows = [r + [(-1, L - sum(n for _, n in r))] if sum(n for _, n in r) < L else r for r in rows]
    values = [v for r in rows for v, _ in r]
    lengths = [n for r in rows for _, n in r]
    row_ids = [i for i, r in enumerate(rows) for _ in r]
    chunks = lzfchunks.row_chunks(values, lengths, row_ids, len(rows))
    expected = [np.repeat([v for v, _ in r], [n for _, n in r]).astype(np.int64) for r in rows]
    path = tmp_path_factory.mktemp("lzf") / "c.h5"
    with h5py.File(path, "w") as h5:
        d = h5.create_dataset("c", shape=(len(rows), L, 1), dtype=np.int64, chunks=(1, L, 1),
                              compression="lzf", shuffle=True, fillvalue=-1)
        for i, c in enumerate(chunks):
            raw = lzfchunks.lzf_decompress(c, 8 * L)
            np.testing.assert_array_equal(
                np.frombuffer(raw, np.uint8).reshape(8, L).T.copy().view(np.int64)[:, 0], expected[i])
            d.id.write_direct_chunk((i, 0, 0), c)
    with h5py.File(path) as h5:
        for i, e in enumerate(expected):
            np.testing.assert_array_equal(h5["c"][i, :, 0], e)


# ---------------------------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def pombe_data(shared_data, tmp_path_factory):
    """Only data/* (and root attributes) of the upstream file: the geenuff2h5 output of chr I."""
    path = tmp_path_factory.mktemp("pombe") / "spombe_chrI.h5"
    with h5py.File(shared_data / UPSTREAM) as src, h5py.File(path, "w") as dst:
        src.copy("data", dst)
        for k, v in src.attrs.items():
            dst.attrs[k] = v
    return path


def pombe_bams(shared_data):
    return [shared_data / "schizosaccharomyces_pombe" / "bam" / f"{b}.chrI.hisat2.bam" for b in POMBE_BAMS]


@pytest.mark.realdata
def test_equals_upstream_spombe(shared_data, pombe_data, tmp_path, run_tool):
    h5 = tmp_path / "p.h5"
    shutil.copyfile(pombe_data, h5)
    code, err = run_tool(anc.main, ["-s", "sp_chrI", "-d", h5, "-b", *pombe_bams(shared_data),
                                    "--second-read-is-sense-strand", "--dataset-prefix", "rnaseq",
                                    "--threads", 2])
    assert code == 0, err
    with h5py.File(h5) as a, h5py.File(shared_data / UPSTREAM) as b:
        for name in ("rnaseq_coverage", "rnaseq_spliced_coverage"):
            x, y = a["evaluation"][name], b["evaluation"][name]
            for prop in ("dtype", "shape", "chunks", "compression", "shuffle", "maxshape", "fillvalue"):
                assert getattr(x, prop) == getattr(y, prop), (name, prop)
            for r0 in range(0, x.shape[0], 64):
                np.testing.assert_array_equal(x[r0:r0 + 64], y[r0:r0 + 64], err_msg=f"{name} rows {r0}+")
        assert [p.rsplit(b"/", 1)[1] for p in a["evaluation/rnaseq_meta/bam_files"][:]] == \
               [p.rsplit(b"/", 1)[1] for p in b["evaluation/rnaseq_meta/bam_files"][:]]
        assert dict(a.attrs) == dict(b.attrs)
        with h5py.File(pombe_data) as orig:  # nothing else changed: the same stored chunks
            for k, d in orig["data"].items():
                ours = a["data"][k]
                assert ours.id.get_num_chunks() == d.id.get_num_chunks()
                for c in range(d.id.get_num_chunks()):
                    offset = d.id.get_chunk_info(c).chunk_offset
                    assert ours.id.read_direct_chunk(offset) == d.id.read_direct_chunk(offset), k
    # strandedness: >= 95 % agreement for every library, no warning
    agreements = [float(x) for x in __import__("re").findall(r"strandedness check: ([\d.]+)%", err)]
    assert len(agreements) == 5 and min(agreements) >= 95, err
    assert "WARNING" not in err
    assert "reads used" in err and "mean coverage" in err and "splice junctions" in err


@pytest.mark.realdata
def test_bam_read_in_small_steps_same_result(shared_data, pombe_data, tmp_path, run_tool, monkeypatch):
    """Counting chunk by chunk (memory bounded by the sequence, not the reads): BAMs read in
    hundreds of small steps give the same columns, counters and strandedness as one step."""
    bams = [pombe_bams(shared_data)[k] for k in (0, 4)]
    outputs = []
    for step in (1 << 24, 3000):
        monkeypatch.setattr(anc._bam, "READ_SIZE", step)
        h5 = tmp_path / f"p{step}.h5"
        shutil.copyfile(pombe_data, h5)
        code, err = run_tool(anc.main, ["-s", "sp_chrI", "-d", h5, "-b", *bams, "--threads", 1,
                                        "--second-read-is-sense-strand", "--dataset-prefix", "rnaseq"])
        assert code == 0, err
        with h5py.File(h5) as f:
            columns = [f["evaluation"][n][:] for n in ("rnaseq_coverage", "rnaseq_spliced_coverage")]
        summary = [line for line in err.splitlines() if ".bam: " in line]  # per-BAM log lines
        assert len(summary) >= 6 and any("strandedness check: 9" in line for line in summary), err
        outputs.append((columns, summary))
    for a, b in zip(outputs[0][0], outputs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert outputs[0][1] == outputs[1][1]
    with h5py.File(shared_data / UPSTREAM) as up:
        np.testing.assert_array_equal(outputs[1][0][0], up["evaluation/rnaseq_coverage"][:, :, [0, 4]])


@pytest.mark.realdata
def test_strandedness_warning_spombe(shared_data, pombe_data, tmp_path, run_tool):
    h5 = tmp_path / "p.h5"
    shutil.copyfile(pombe_data, h5)
    bams = pombe_bams(shared_data)[:1]
    code, err = run_tool(anc.main, ["-s", "sp_chrI", "-d", h5, "-b", *bams, "--first-read-is-sense-strand",
                                    "--threads", 1])
    assert code == 0, err
    assert "WARNING" in err and "!!!" in err and "contradicts" in err and "--second-read-is-sense-strand" in err
    code, err = run_tool(anc.main, ["-s", "sp_chrI", "-d", h5, "-b", *bams, "--unstranded", "--threads", 1])
    assert code == 0
    assert "looks stranded" in err


KILL_SCRIPT = """
import sys
from helixtune_tools.add_ngs_coverage import main_cli
sys.argv = ["add_ngs_coverage.py"] + sys.argv[1:]
main_cli()
"""


def same_stored_chunks(a_path, b_path, group="evaluation"):
    """Both files hold the same datasets in ``group`` with byte-identical stored chunks."""
    with h5py.File(a_path) as a, h5py.File(b_path) as b:
        names = []
        b[group].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            x, y = a[group][n], b[group][n]
            assert x.shape == y.shape and x.id.get_num_chunks() == y.id.get_num_chunks(), n
            for c in range(y.id.get_num_chunks()):
                off = y.id.get_chunk_info(c).chunk_offset
                assert x.id.read_direct_chunk(off) == y.id.read_direct_chunk(off), (n, off)
            if not x.chunks:
                np.testing.assert_array_equal(x[()], y[()])


@pytest.mark.realdata
@pytest.mark.slow
def test_kill_leaves_file_unchanged(shared_data, pombe_data, tmp_path):
    """SIGKILL at random moments (and SIGTERM): the file is either exactly as before or, if the
    signal came after the final rename, the complete result; never anything in between."""
    h5 = tmp_path / "p.h5"
    shutil.copyfile(pombe_data, h5)
    before = sha256(h5)
    cmd = [sys.executable, "-c", KILL_SCRIPT, "-s", "sp_chrI", "-d", str(h5), "--threads", "2",
           "-b", *map(str, pombe_bams(shared_data)), "--second-read-is-sense-strand", "--quiet"]
    full = tmp_path / "full.h5"
    shutil.copyfile(h5, full)
    t0 = time.monotonic()
    assert subprocess.run([str(full) if a == str(h5) else a for a in cmd]).returncode == 0
    duration = time.monotonic() - t0
    rng = random.Random(6)
    unchanged = 0
    env = dict(os.environ, TMPDIR=str(tmp_path))  # a killed run's temporary directory stays here
    for k in range(7):
        parts = sorted(tmp_path.glob(".p.h5.*.part"))
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(0.02, 0.9) * duration)
        proc.send_signal(signal.SIGTERM if k == 6 else signal.SIGKILL)
        proc.wait()
        if sha256(h5) == before:
            unchanged += 1
            with h5py.File(h5) as f:
                assert "evaluation" not in f
            if k == 6 and proc.returncode != 0:  # SIGTERM is caught: its temporary copy is
                # removed (and the killed runs' ones, if it got as far as making its own)
                assert set(tmp_path.glob(".p.h5.*.part")) <= set(parts)
        else:  # the signal came after the rename: the complete, correct result
            same_stored_chunks(h5, full)
            shutil.copyfile(pombe_data, h5)
    # (SIGKILL cannot be caught: its temporary copy .p.h5.*.part stays beside the file until
    # the next run for the same file)
    assert unchanged >= 3, "most kills must land inside the run"


# ---------------------------------------------------------------------------------- bad input

def _bad_cases(tmp_path):
    h5 = cd.make_h5(tmp_path / "tiny.h5")
    bam = cd.make_bam(tmp_path / "r.bam")
    wrong = cd.make_bam(tmp_path / "wrong.bam", refs=[("scaffold_1", 25)], reads=[("r", 0, "scaffold_1", 0, "5M")])
    wrong_len = cd.make_bam(tmp_path / "len.bam", refs=[("chr1", 26), ("chr2", 7)], reads=[])
    text = tmp_path / "text.bam"
    text.write_text("not a bam\n")
    notes = tmp_path / "notes.h5"
    notes.write_text("not hdf5")
    return h5, bam, wrong, wrong_len, text, notes


BAD = [
    ("no_h5", lambda p: ["-s", "tiny", "-d", p / "nope.h5", "-b", p / "r.bam", "--unstranded"], 1, "does not exist"),
    ("not_h5", lambda p: ["-s", "tiny", "-d", p / "notes.h5", "-b", p / "r.bam", "--unstranded"], 1, "not a readable HDF5"),
    ("species", lambda p: ["-s", "human", "-d", p / "tiny.h5", "-b", p / "r.bam", "--unstranded"], 1,
     "species 'human' not in data/species (present: other, tiny)"),
    ("no_bam", lambda p: ["-s", "tiny", "-d", p / "tiny.h5", "-b", p / "x.bam", "--unstranded"], 1, "x.bam' does not exist"),
    ("text_bam", lambda p: ["-s", "tiny", "-d", p / "tiny.h5", "-b", p / "text.bam", "--unstranded"], 1, "not a readable BAM"),
    ("seqids", lambda p: ["-s", "tiny", "-d", p / "tiny.h5", "-b", p / "r.bam", p / "wrong.bam", "--unstranded"], 1,
     "2 of 2 sequence IDs of the HDF5 file are not reference names of the BAM: chr1, chr2; BAM references not in the file: scaffold_1"),
    ("length", lambda p: ["-s", "tiny", "-d", p / "tiny.h5", "-b", p / "len.bam", "--unstranded"], 1,
     "chr1 (26 bp in the BAM, 25 bp in the HDF5 file)"),
    ("two_flags", lambda p: ["-s", "tiny", "-d", p / "tiny.h5", "-b", p / "r.bam", "--unstranded",
                             "--first-read-is-sense-strand"], 2, "not allowed with argument"),
    ("no_flag", lambda p: ["-s", "tiny", "-d", p / "tiny.h5", "-b", p / "r.bam"], 2, "one of the arguments"),
    ("shift", lambda p: ["-s", "tiny", "-d", p / "tiny.h5", "-b", p / "r.bam", "--second-read-is-sense-strand",
                         "--shift"], 2, "--shift is only allowed with --unstranded"),
]


@pytest.mark.parametrize("name,argv,code,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input(tmp_path, run_tool, name, argv, code, message):
    files = _bad_cases(tmp_path)
    sums = {p: sha256(p) for p in files}
    listing = sorted(os.listdir(tmp_path))
    got, err = run_tool(anc.main, argv(tmp_path))
    assert got == code, err
    assert message in err, err
    assert {p: sha256(p) for p in files} == sums
    assert sorted(os.listdir(tmp_path)) == listing, "nothing may be left behind"


def test_species_rows_not_contiguous(tmp_path, run_tool):
    h5 = cd.make_h5(tmp_path / "t.h5", sequences=[("a", "c1", 5), ("b", "c2", 5), ("a", "c3", 5)])
    bam = cd.make_bam(tmp_path / "r.bam", refs=[("c1", 5), ("c3", 5)], reads=[])
    code, err = run_tool(anc.main, ["-s", "a", "-d", h5, "-b", bam, "--unstranded"])
    assert code == 1 and "not contiguous" in err


def test_existing_dataset_with_other_shape(tiny, run_tool):
    h5, bam = tiny
    with h5py.File(h5, "a") as f:
        f.create_dataset("evaluation/cage_coverage", shape=(3, 4, 1), dtype="i8", maxshape=(None, 4, None))
        f.create_dataset("evaluation/cage_spliced_coverage", shape=(3, 4, 1), dtype="i8", maxshape=(None, 4, None))
    before = sha256(h5)
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, "--unstranded"])
    assert code == 1 and "cannot append" in err
    assert sha256(h5) == before


def test_failure_midway_leaves_file_unchanged(tiny, run_tool, monkeypatch):
    h5, bam = tiny
    before = sha256(h5)

    def boom(*a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(anc, "write_column", boom)
    with pytest.raises(OSError, match="simulated"):
        anc.main(["-s", "tiny", "-d", str(h5), "-b", str(bam), "--unstranded"])
    assert sha256(h5) == before
    assert [p.name for p in h5.parent.iterdir() if p.name.endswith(".part")] == []


def test_inconsistent_existing_columns(tiny, run_tool):
    h5, bam = tiny
    assert run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, "--unstranded"])[0] == 0
    with h5py.File(h5, "a") as f:
        del f["evaluation/cage_meta/bam_files"]
    before = sha256(h5)
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, "--unstranded"])
    assert code == 1 and "lists 0 BAMs" in err
    assert sha256(h5) == before


def test_incompressible_chunk_stored_unfiltered(tmp_path):
    """A row LZF cannot shrink is stored shuffled only (lzf bit set in the filter mask)."""
    L = 16
    rng = np.random.default_rng(3)
    values = rng.integers(2 ** 56, 2 ** 62, size=L, dtype=np.int64)
    with h5py.File(tmp_path / "c.h5", "w") as f:
        d = f.create_dataset("c", shape=(2, L, 1), maxshape=(None, L, None), chunks=(1, L, 1),
                             dtype=np.int64, fillvalue=-1, compression="lzf", shuffle=True)
        runs = (np.append(values, 3), np.append(np.ones(L, np.int64), L), np.repeat([0, 1], [L, 1]))
        anc.write_column(d, 0, slice(0, 2), runs, fast=True)
        assert d.id.read_direct_chunk((0, 0, 0))[0] == 2
        assert d.id.read_direct_chunk((1, 0, 0))[0] == 0
    with h5py.File(tmp_path / "c.h5") as f:
        np.testing.assert_array_equal(f["c"][0, :, 0], values)
        assert (f["c"][1, :, 0] == 3).all()


def test_sam_input_is_converted(tmp_path, run_tool):
    h5 = cd.make_h5(tmp_path / "tiny.h5")
    bam = cd.make_bam(tmp_path / "r.bam")
    sam = tmp_path / "r.sam"
    sam.write_text(pysam.view("-h", str(bam)))
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", sam, "--unstranded"])
    assert code == 0, err
    assert "is not BAM (SAM or CRAM)" in err
    check_file(h5, "tiny", [cd.READS], "unstranded")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.bam", "r.bam.bai", "r.sam", "tiny.h5"]


def test_lengths_multiple_of_L(tmp_path, run_tool):
    """No padding row when a sequence is a multiple of L; reads across row boundaries."""
    seqs = [("s", "c20", 20), ("s", "c10", 10), ("s", "c1", 1)]
    reads = [("a", 0, "c20", 5, "10M"), ("b", 16, "c20", 8, "2M6N4M"), ("c", 145, "c10", 0, "10M"),
             ("d", 65, "c1", 0, "1M"), ("e", 0, "c20", 19, "1M")]
    h5 = cd.make_h5(tmp_path / "m.h5", sequences=seqs)
    bam = cd.make_bam(tmp_path / "m.bam", reads=reads, refs=[("c20", 20), ("c10", 10), ("c1", 1)])
    code, err = run_tool(anc.main, ["-s", "s", "-d", h5, "-b", bam, "--second-read-is-sense-strand"])
    assert code == 0, err
    check_file(h5, "s", [reads], "second", sequences=seqs)
