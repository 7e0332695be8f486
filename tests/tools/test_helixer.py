"""Helixer.py: the same GFF3 bytes as the three steps by hand (fasta2h5.py -> HybridModel.py
--overlap -> helixer_post_bin), bad input caught before any model work, no temporary files left
on success, failure or SIGTERM, a GFF3 that gt gff3validator accepts, --config-path."""
import gzip
import pathlib
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from helixtune import network, postprocess
from helixtune_tools import Helixer, HybridModel, fasta2h5, helixer_post

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEST_DATA = ROOT / "galaxy" / "test-data"
MODEL = TEST_DATA / "hybridmodel_tiny_model.h5"  # pool size 9, with phase output
# thresholds low enough that the untrained tiny model yields genes
POST = dict(window=100, edge=0.0, peak=0.0, min_length=1)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("HELIXTUNE_TF_THREADS", "1")
    monkeypatch.setenv("HELIXTUNE_THREADS", "1")


def helixer_argv(fasta, out, L=1008, model=MODEL, post=POST, extra=()):
    return ["--fasta-path", fasta, "--gff-output-path", out, "--model-filepath", model,
            "--subsequence-length", L, "--species", "ex", "--window-size", post["window"],
            "--edge-threshold", post["edge"], "--peak-threshold", post["peak"],
            "--min-coding-length", post["min_length"], "--threads", 1, "--quiet", *extra]


def by_hand(tmp_path, fasta, L=1008, model=MODEL, post=POST, overlap=True):
    """The three steps by hand; returns (GFF3 path, predictions path)."""
    genome, preds, gff = tmp_path / "genome.h5", tmp_path / "preds.h5", tmp_path / "steps.gff3"
    assert fasta2h5.main(["--fasta-path", str(fasta), "--h5-output-path", str(genome),
                          "--species", "ex", "--subsequence-length", str(L), "--quiet"]) == 0
    assert HybridModel.main(["--load-model-path", str(model), "--test-data", str(genome),
                             "--prediction-output-path", str(preds), "--quiet"]
                            + (["--overlap"] if overlap else [])) == 0
    assert helixer_post.main([str(genome), str(preds), str(post["window"]), str(post["edge"]),
                              str(post["peak"]), str(post["min_length"]), str(gff),
                              "--quiet"]) == 0
    return gff, preds, genome


def leftovers(directory, *keep):
    return sorted(p.name for p in pathlib.Path(directory).iterdir() if p.name not in keep)


def test_same_gff3_as_the_three_steps(tmp_path):
    steps = tmp_path / "steps"
    steps.mkdir()
    expected, preds, _ = by_hand(steps, TEST_DATA / "example.fa")
    out, kept = tmp_path / "one.gff3", tmp_path / "kept.h5"
    assert Helixer.main([str(a) for a in helixer_argv(
        TEST_DATA / "example.fa", out, extra=("--keep-predictions", kept))]) == 0
    assert out.read_bytes() == expected.read_bytes()
    assert out.read_text().count("\tgene\t") > 0
    with h5py.File(kept) as a, h5py.File(preds) as b:
        for name in ("predictions", "predictions_phase"):
            np.testing.assert_array_equal(a[name][:], b[name][:])
    assert leftovers(tmp_path, "steps") == ["kept.h5", "one.gff3"]


def test_genome_converted_a_part_at_a_time(tmp_path, monkeypatch):
    """--write-by smaller than a sequence: one genome file per sequence, on disk one at a time;
    the same GFF3 and predictions as the whole genome by hand."""
    steps = tmp_path / "steps"
    steps.mkdir()
    expected, preds, _ = by_hand(steps, TEST_DATA / "example.fa")
    parts_on_disk = []
    convert_parts = Helixer.genome_h5.convert_parts

    def watched(fasta, directory, *args, **kwargs):
        for part in convert_parts(fasta, directory, *args, **kwargs):
            parts_on_disk.append(sorted(p.name for p in pathlib.Path(directory).iterdir()
                                        if p.name.startswith("genome_part")))
            yield part

    monkeypatch.setattr(Helixer.genome_h5, "convert_parts", watched)
    out, kept = tmp_path / "one.gff3", tmp_path / "kept.h5"
    assert Helixer.main([str(a) for a in helixer_argv(
        TEST_DATA / "example.fa", out, extra=("--keep-predictions", kept,
                                              "--write-by", 1008))]) == 0
    assert parts_on_disk == [["genome_part0.h5"], ["genome_part1.h5"]]
    assert out.read_bytes() == expected.read_bytes()
    with h5py.File(kept) as a, h5py.File(preds) as b:
        for name in ("predictions", "predictions_phase"):
            np.testing.assert_array_equal(a[name][:], b[name][:])
    assert leftovers(tmp_path, "steps") == ["kept.h5", "one.gff3"]


def test_no_overlap_from_a_ready_genome_file(tmp_path):
    expected, _, genome = by_hand(tmp_path, TEST_DATA / "example.fa", overlap=False)
    out = tmp_path / "one.gff3"
    argv = helixer_argv(TEST_DATA / "example.fa", out, extra=("--no-overlap",))
    argv[argv.index("--fasta-path"):argv.index("--fasta-path") + 2] = ["--h5-path", genome]
    assert Helixer.main([str(a) for a in argv]) == 0
    assert out.read_bytes() == expected.read_bytes()


@pytest.mark.skipif(shutil.which("gt") is None,
                    reason="gt (Debian package genometools) is not installed")
def test_gff3validator_accepts_the_output(tmp_path):
    out = tmp_path / "one.gff3"
    assert Helixer.main([str(a) for a in helixer_argv(TEST_DATA / "example.fa", out)]) == 0
    assert out.read_text().count("\tgene\t") > 0
    done = subprocess.run(["gt", "gff3validator", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ---- bad input: caught before any model work ---------------------------------------------------

@pytest.fixture
def no_model_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("model work started")
    monkeypatch.setattr(network, "load_model", refuse)
    monkeypatch.setattr(network, "setup_tensorflow", refuse)


def not_a_model_h5(path):
    with h5py.File(path, "w") as h5:
        h5["x"] = [1]
    return path


@pytest.mark.parametrize("case, expected", [
    ("not_fasta", "line 1: not a FASTA file"),
    ("pool_size", "--subsequence-length 1000 is not divisible by the model's pool size 9"),
    ("no_out_dir", "does not exist"),
    ("model_not_h5", "not an HDF5 model file"),
    ("model_not_keras", "not a Keras model file"),
    ("lineage_not_installed", "run: fetch_helixer_models.py --lineage fungi -c"),
    ("unknown_lineage", "unknown lineage 'mammals'"),
    ("no_model_but_fungi_installed", "choose one with --lineage"),
    ("overlap_offset", "--overlap-offset 500 does not divide the subsequence length 1008"),
    ("core_length", "--overlap-core-length 1008 must be smaller"),
    ("h5_length", "rows of 1008 bp, but --subsequence-length is 2016"),
    ("no_input", "give either --fasta-path or --h5-path"),
])
def test_bad_input_fails_before_model_work(tmp_path, run_tool, no_model_work, case, expected):
    fasta, out, L, model = TEST_DATA / "example.fa", tmp_path / "out.gff3", 1008, MODEL
    extra = []
    if case == "not_fasta":
        fasta = TEST_DATA / "annotated.gff3"
    elif case == "pool_size":
        L = 1000
    elif case == "no_out_dir":
        out = tmp_path / "missing" / "out.gff3"
    elif case == "model_not_h5":
        model = TEST_DATA / "example.fa"
    elif case == "model_not_keras":
        model = not_a_model_h5(tmp_path / "m.h5")
    elif case == "overlap_offset":
        extra = ["--overlap-offset", "500"]
    elif case == "core_length":
        extra = ["--overlap-core-length", "1008"]
    argv = [str(a) for a in helixer_argv(fasta, out, L=L, model=model, extra=extra)]
    if case in ("lineage_not_installed", "unknown_lineage", "no_model_but_fungi_installed"):
        models_dir = tmp_path / "models"
        models_dir.mkdir()
        i = argv.index("--model-filepath")
        del argv[i:i + 2]
        argv += ["--downloaded-model-path", str(models_dir)]
        if case == "lineage_not_installed":
            argv += ["--lineage", "fungi"]
        elif case == "unknown_lineage":
            argv += ["--lineage", "mammals"]
        else:
            (models_dir / "fungi").mkdir()
            shutil.copy(MODEL, models_dir / "fungi" / "fungi_v0.3_a_0100.h5")
    if case == "h5_length":
        genome = tmp_path / "genome.h5"
        assert fasta2h5.main(["--fasta-path", str(fasta), "--h5-output-path", str(genome),
                              "--species", "ex", "--subsequence-length", "1008", "--quiet"]) == 0
        i = argv.index("--fasta-path")
        argv[i:i + 2] = ["--h5-path", str(genome)]
        argv[argv.index("--subsequence-length") + 1] = "2016"
    if case == "no_input":
        i = argv.index("--fasta-path")
        del argv[i:i + 2]
    code, err = run_tool(Helixer.main, argv)
    assert code != 0 and expected in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.rglob(".helixer.*")]


def test_failing_post_processing_is_a_failure(tmp_path, run_tool, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("decoder broke")
    monkeypatch.setattr(postprocess, "decode_region", broken)
    out = tmp_path / "out.gff3"
    with pytest.raises(RuntimeError, match="decoder broke"):
        Helixer.main([str(a) for a in helixer_argv(TEST_DATA / "example.fa", out)])
    assert leftovers(tmp_path) == []


def test_sigterm_during_prediction_leaves_nothing(tmp_path):
    big = tmp_path / "big.fa"
    rng = np.random.default_rng(0)
    big.write_text(">s\n" + "".join(rng.choice(list("ACGT"), 400_000)) + "\n")
    out = tmp_path / "out" / "out.gff3"
    out.parent.mkdir()
    argv = [str(a) for a in helixer_argv(big, out)]
    argv.remove("--quiet")
    proc = subprocess.Popen([sys.executable, "-m", "helixtune_tools.Helixer", *argv],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("Helixer.py predict:") or "predicting" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode != 0, "".join(lines) + rest
    assert leftovers(out.parent) == []


# ---- --config-path -----------------------------------------------------------------------------

def test_config_file_gives_defaults_the_command_line_wins(tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("# options\nfasta_path: 'genome.fa'\ngff_output_path: out.gff3\n"
                      "batch_size: 8\nno_overlap: true\nspecies: from_config\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # the built-in key: value reader
    args = Helixer.parse_args(["--config-path", str(config), "--species", "cmdline",
                               "--lineage", "fungi"])
    assert (args.fasta_path, args.gff_output_path, args.batch_size, args.no_overlap,
            args.species) == ("genome.fa", "out.gff3", 8, True, "cmdline")


def test_config_file_errors(tmp_path, run_tool):
    config = tmp_path / "c.yaml"
    config.write_text("fasta_pth: genome.fa\n")
    code, err = run_tool(Helixer.main, ["--config-path", str(config)])
    assert code == 2 and "unknown option(s) fasta_pth" in err


def test_defaults_are_helixer_036():
    args = Helixer.get_parser().parse_args([])
    assert (args.species, args.write_by, args.batch_size, args.window_size, args.edge_threshold,
            args.peak_threshold, args.min_coding_length, args.compression, args.no_overlap,
            args.no_multiprocess) == ("", 20_000_000, 32, 100, 0.1, 0.8, 100, "gzip", False,
                                      False)


# ---- real data ---------------------------------------------------------------------------------

@pytest.mark.realdata
def test_spombe_slice_same_as_the_steps(shared_data, tmp_path):
    """S. pombe chr I, the first 150 kb (the whole chromosome takes minutes on one core), with
    upstream's tiny model trained on it: real genes, the same bytes as the steps by hand."""
    with gzip.open(shared_data / "schizosaccharomyces_pombe" / "sp_chrI.fa.gz", "rt") as f:
        header, seq = f.readline(), []
        for line in f:
            if line.startswith(">") or sum(map(len, seq)) >= 150_000:
                break
            seq.append(line.strip())
    fasta = tmp_path / "slice.fa"
    fasta.write_text(header + "".join(seq)[:150_000] + "\n")
    model = shared_data / "helixer_h5" / "upstream_0.3.6" / "tiny_model.h5"
    post = dict(window=100, edge=0.1, peak=0.8, min_length=100)
    steps = tmp_path / "steps"
    steps.mkdir()
    expected, _, _ = by_hand(steps, fasta, L=21384, model=model, post=post)
    out = tmp_path / "one.gff3"
    assert Helixer.main([str(a) for a in helixer_argv(fasta, out, L=21384, model=model,
                                                      post=post)]) == 0
    assert out.read_bytes() == expected.read_bytes()
    assert out.read_text().count("\tgene\t") >= 5
    if shutil.which("gt"):
        done = subprocess.run(["gt", "gff3validator", str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


# ---- which model -------------------------------------------------------------------------------

def test_model_choice_installed_lineage_and_bundled_default(tmp_path, monkeypatch):
    from helixtune import models
    models_dir = tmp_path / "models"
    (models_dir / "fungi").mkdir(parents=True)
    shutil.copy(MODEL, models_dir / "fungi" / "fungi_v0.3_a_0100.h5")
    base = ["--fasta-path", "g.fa", "--gff-output-path", "o.gff3",
            "--downloaded-model-path", str(models_dir)]
    path, lineage = Helixer.choose_model(Helixer.parse_args(base + ["--lineage", "fungi"]))
    assert (pathlib.Path(path), lineage) == (models_dir / "fungi" / "fungi_v0.3_a_0100.h5",
                                             "fungi")
    # nothing installed: the bundled model (lineage default)
    (models_dir / "fungi" / "fungi_v0.3_a_0100.h5").unlink()
    data = tmp_path / "package_data"
    (data / "models").mkdir(parents=True)
    shutil.copy(MODEL, data / "models" / "default.h5")
    monkeypatch.setattr(models, "DATA_DIR", data)
    path, lineage = Helixer.choose_model(Helixer.parse_args(base))
    assert (pathlib.Path(path), lineage) == (data / "models" / "default.h5", "default")
    # a model file with --lineage: the lineage only sets the default subsequence length
    args = Helixer.parse_args(base + ["--model-filepath", str(MODEL), "--lineage", "fungi"])
    assert Helixer.choose_model(args) == (str(MODEL), "fungi")
