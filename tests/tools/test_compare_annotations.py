"""compare_annotations.py: hand-made cases with known confusion matrices and feature scores,
identical inputs, row order, masking, GFF3 inputs, the HTML report in headless Chromium, and a
real-data case (A. thaliana reference GFF3 against a perturbed copy)."""
import gzip
import json
import re
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from handmade_h5 import row_dataset
from geenuff_helpers import write_case
from helixtune_tools import compare_annotations as ca

L = 12
# one sequence of 12 bp: a plus row and a minus row; classes 0 intergenic, 1 UTR, 2 CDS, 3 intron
REF_PLUS = [0, 0, 1, 1, 2, 2, 2, 3, 3, 2, 2, 0]
PRED_PLUS = [0, 1, 1, 1, 2, 2, 3, 3, 3, 2, 0, 0]
# worked out by hand (rows: reference, columns: predicted); the minus row is all intergenic
EXPECTED_CM = [[14, 1, 0, 0], [0, 2, 0, 0], [1, 0, 3, 1], [0, 0, 0, 2]]
ROWS = [("s1", 0, 12), ("s1", 12, 0)]


def onehot(classes):
    return np.eye(4, dtype=np.int8)[np.asarray(classes)]


def write_reference(path, rows, y_classes, weights=None, phase_classes=None):
    with h5py.File(path, "w") as h5:
        data = h5.create_group("data")
        row_dataset(data, "y", onehot(y_classes))
        row_dataset(data, "sample_weights", np.ones((len(rows), L), np.int8)
                    if weights is None else np.asarray(weights, np.int8))
        row_dataset(data, "phases", onehot(np.zeros((len(rows), L), int) if phase_classes is None
                                           else phase_classes))
        row_dataset(data, "seqids", np.array([r[0].encode() for r in rows], dtype="S50"))
        row_dataset(data, "start_ends", np.array([r[1:] for r in rows], dtype=np.int64))


def write_predictions(path, classes, phase_classes=None, coordinates_of=None):
    """A HybridModel.py-like predictions file (probabilities, no coordinates unless given)."""
    probs = np.full(np.shape(classes) + (4,), 0.1, np.float16)
    np.put_along_axis(probs, np.asarray(classes)[..., None], 0.7, axis=-1)
    with h5py.File(path, "w") as h5:
        row_dataset(h5, "predictions", probs)
        if phase_classes is not None:
            row_dataset(h5, "predictions_phase", onehot(phase_classes).astype(np.float16))
        if coordinates_of is not None:
            data = h5.create_group("data")
            row_dataset(data, "seqids", np.array([r[0].encode() for r in coordinates_of], "S50"))
            row_dataset(data, "start_ends", np.array([r[1:] for r in coordinates_of], np.int64))


def run(run_tool, out, *args):
    code, err = run_tool(ca.main, ["--output-dir", out, "--quiet", *args])
    assert code == 0, err
    return json.loads((out / "report.json").read_text())


def handmade(tmp_path, weights=None):
    ref = tmp_path / "ref.h5"
    write_reference(ref, ROWS, [REF_PLUS, [0] * L], weights,
                    [[0, 0, 0, 0, 1, 3, 2, 0, 0, 1, 3, 0], [0] * L])
    pred = tmp_path / "pred.h5"
    write_predictions(pred, [PRED_PLUS, [0] * L], coordinates_of=ROWS)
    return ref, pred


def test_known_confusion_matrix(tmp_path, run_tool):
    ref, pred = handmade(tmp_path)
    report = run(run_tool, tmp_path / "out", "--reference", ref, "--predictions", pred)
    (p,) = report["predictions"]
    base = p["base_level"]
    assert base["confusion_matrix"] == EXPECTED_CM
    # genic: TP 2+3+2, FP 1+0+1, FN 0+2+0; sub-genic (CDS, intron): TP 5, FP 1, FN 2
    assert p["genic_f1"] == pytest.approx(7 / 9)
    assert base["genic"]["precision"] == pytest.approx(7 / 9)
    assert p["sub_genic_f1"] == pytest.approx(10 / 13)
    assert base["per_class"]["utr"]["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1))
    assert base["masked_bases"] == 0 and base["n_bases"] == 24
    tsv = (tmp_path / "out" / "per_sequence.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[:3] == ["prediction", "seqid", "compared_bases"]
    assert tsv[1].split("\t")[:3] == ["pred.h5", "s1", "24"]
    assert float(tsv[1].split("\t")[6]) == pytest.approx(7 / 9, abs=1e-6)


def test_masked_positions_excluded_and_counted(tmp_path, run_tool):
    weights = np.ones((2, L), np.int8)
    weights[0, 10] = 0  # reference CDS predicted intergenic: leaves the matrix
    weights[1, :3] = 0
    ref, pred = handmade(tmp_path, weights)
    base = run(run_tool, tmp_path / "out", "--reference", ref,
               "--predictions", pred)["predictions"][0]["base_level"]
    expected = np.array(EXPECTED_CM)
    expected[2, 0] -= 1
    expected[0, 0] -= 3
    assert base["confusion_matrix"] == expected.tolist()
    assert base["masked_bases"] == 4 and base["n_bases"] == 20
    # genic FN drops by one: TP 7, FP 2, FN 1
    assert base["genic"]["f1"] == pytest.approx(14 / 17)


def test_padding_left_out(tmp_path, run_tool):
    """A 7-bp sequence: rows padded to 12; padding is neither compared nor counted as masked."""
    rows = [("s1", 0, 7), ("s1", 7, 0)]
    ref, pred = tmp_path / "ref.h5", tmp_path / "pred.h5"
    y = np.zeros((2, L), int)
    y[0, :7] = [0, 2, 2, 2, 3, 2, 0]
    y_onehot = onehot(y)
    y_onehot[:, 7:] = 0  # padding: all zero
    write_reference(ref, rows, y, weights=(y_onehot.any(-1)).astype(np.int8))
    with h5py.File(ref, "r+") as h5:
        h5["data/y"][...] = y_onehot
    pred_cls = np.full((2, L), 2)  # CDS everywhere, padding included
    write_predictions(pred, pred_cls, coordinates_of=rows)
    base = run(run_tool, tmp_path / "out", "--reference", ref,
               "--predictions", pred)["predictions"][0]["base_level"]
    assert base["n_bases"] == 14 and base["masked_bases"] == 0
    assert base["confusion_matrix"] == [[0, 0, 9, 0], [0, 0, 0, 0], [0, 0, 4, 0], [0, 0, 1, 0]]
    # Helixer 0.3.6 layout: the padded minus row's predictions sit after 5 positions of padding
    pred_cls = np.zeros((2, L), int)
    pred_cls[1, 5:] = 3  # the 7 valid positions, predicted intron
    write_predictions(pred, pred_cls, coordinates_of=rows)
    base = run(run_tool, tmp_path / "out", "--reference", ref, "--predictions", pred,
               "--predictions-layout", "padding-first")["predictions"][0]["base_level"]
    assert base["confusion_matrix"] == [[2, 0, 0, 7], [0, 0, 0, 0], [4, 0, 0, 0], [1, 0, 0, 0]]


def test_identical_inputs_f1_one(tmp_path, run_tool):
    ref, _ = handmade(tmp_path)
    p = run(run_tool, tmp_path / "out", "--reference", ref, "--predictions", ref)["predictions"][0]
    assert p["genic_f1"] == 1.0 and p["sub_genic_f1"] == 1.0 and p["phase_f1"] == 1.0
    assert all(v["f1"] == 1.0 for v in p["base_level"]["per_class"].values())


def test_row_order_does_not_matter(tmp_path, run_tool):
    """Shuffled prediction rows (coordinates from --prediction-data) and shuffled reference
    rows give the same figures; several sequences, several predictions, phases."""
    rng = np.random.default_rng(7)
    rows = [(s, a, b) for s, n in (("a", 36), ("b", 24), ("c", 12))
            for a, b in [(k, k + L) for k in range(0, n, L)] + [(k + L, k) for k in
                                                                  range(0, n, L)][::-1]]
    y = rng.integers(0, 4, (len(rows), L))
    ph = rng.integers(0, 4, (len(rows), L))
    preds = [rng.integers(0, 4, (len(rows), L)) for _ in range(2)]
    pred_ph = rng.integers(0, 4, (len(rows), L))
    write_reference(tmp_path / "ref.h5", rows, y, phase_classes=ph)
    data = tmp_path / "data.h5"
    write_reference(data, rows, y)
    for k, p in enumerate(preds):
        write_predictions(tmp_path / f"p{k}.h5", p, pred_ph)
    perm = rng.permutation(len(rows))
    shuffled = [rows[i] for i in perm]
    write_reference(tmp_path / "ref_shuffled.h5", shuffled, y[perm], phase_classes=ph[perm])
    write_reference(tmp_path / "data_shuffled.h5", shuffled, y[perm])
    for k, p in enumerate(preds):
        write_predictions(tmp_path / f"p{k}_shuffled.h5", p[perm], pred_ph[perm])
    a = run(run_tool, tmp_path / "a", "--reference", tmp_path / "ref.h5", "--predictions",
            tmp_path / "p0.h5", tmp_path / "p1.h5", "--names", "x", "y",
            "--prediction-data", data)
    b = run(run_tool, tmp_path / "b", "--reference", tmp_path / "ref.h5", "--predictions",
            tmp_path / "p0_shuffled.h5", tmp_path / "p1_shuffled.h5", "--names", "x", "y",
            "--prediction-data", tmp_path / "data_shuffled.h5", tmp_path / "data_shuffled.h5",
            "--write-by", L)
    c = run(run_tool, tmp_path / "c", "--reference", tmp_path / "ref_shuffled.h5",
            "--predictions", tmp_path / "p0.h5", tmp_path / "p1.h5", "--names", "x", "y",
            "--prediction-data", data, "--write-by", 2 * L)
    for k in range(2):
        assert a["predictions"][k]["base_level"] == b["predictions"][k]["base_level"] \
            == c["predictions"][k]["base_level"]
        # independent count
        cm = np.zeros((4, 4), int)
        np.add.at(cm, (y.ravel(), preds[k].ravel()), 1)
        assert a["predictions"][k]["base_level"]["confusion_matrix"] == cm.tolist()
        assert a["predictions"][k]["per_sequence"] == b["predictions"][k]["per_sequence"]
    assert a["predictions"][0]["phase_f1"] is not None


def test_coordinates_from_test_data_path(tmp_path, run_tool):
    """A HybridModel.py predictions file names its data file in the test_data_path attribute;
    a shared --prediction-data is for files without coordinates of their own."""
    ref, with_coords = handmade(tmp_path)
    bare = tmp_path / "bare.h5"
    write_predictions(bare, [PRED_PLUS, [0] * L])
    with h5py.File(bare, "r+") as h5:
        h5.attrs["test_data_path"] = str(ref)
    a = run(run_tool, tmp_path / "a", "--reference", ref, "--predictions", bare)
    b = run(run_tool, tmp_path / "b", "--reference", ref, "--predictions", bare, with_coords,
            "--prediction-data", ref)
    assert a["predictions"][0]["base_level"]["confusion_matrix"] == EXPECTED_CM
    assert [p["base_level"]["confusion_matrix"] for p in b["predictions"]] == [EXPECTED_CM] * 2


def test_rows_missing_from_a_prediction_left_out(tmp_path, run_tool):
    ref, _ = handmade(tmp_path)
    pred = tmp_path / "half.h5"
    write_predictions(pred, [PRED_PLUS], coordinates_of=ROWS[:1])
    code, err = run_tool(ca.main, ["--reference", ref, "--predictions", pred,
                                   "--output-dir", tmp_path / "o"])
    assert code == 0 and "1 of 2 reference rows have no prediction row" in err
    base = json.loads((tmp_path / "o" / "report.json").read_text())["predictions"][0][
        "base_level"]
    assert base["confusion_matrix"] == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 3, 1], [0, 0, 0, 2]]
    assert base["reference_rows_without_prediction"] == 1


def test_user_errors(tmp_path, run_tool):
    ref, pred = handmade(tmp_path)
    bare = tmp_path / "bare.h5"
    write_predictions(bare, [PRED_PLUS, [0] * L])
    other = tmp_path / "other.h5"
    write_predictions(other, [PRED_PLUS, [0] * L], coordinates_of=[("x", 0, 12), ("x", 12, 0)])
    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\n")
    cases = [
        (["--predictions", bare], "coordinates are unknown"),
        (["--predictions", other], "no row matches a reference row"),
        (["--predictions", pred, "--names", "a", "b"], "--names gives 2 name(s) for 1"),
        (["--predictions", gff], "give --fasta"),
        (["--predictions", tmp_path / "nope.h5"], "no such file"),
        (["--predictions", pred, "--subsequence-length", "9"], "the HDF5 inputs have 12"),
    ]
    for extra, message in cases:
        code, err = run_tool(ca.main, ["--reference", ref, "--output-dir", tmp_path / "o",
                                       *extra])
        assert code != 0 and message in err, (extra, err)


# ---- GFF3 inputs -------------------------------------------------------------------------------

def _gene(gid, strand, exons, cds):
    lo, hi = min(e[0] for e in exons), max(e[1] for e in exons)
    lines = [("chr", "t", "gene", lo, hi, ".", strand, ".", f"ID={gid}"),
             ("chr", "t", "mRNA", lo, hi, ".", strand, ".", f"ID={gid}.1;Parent={gid}")]
    lines += [("chr", "t", "exon", a, b, ".", strand, ".", f"Parent={gid}.1") for a, b in exons]
    lines += [("chr", "t", "CDS", a, b, ".", strand, "0", f"Parent={gid}.1") for a, b in cds]
    return lines


REF_GENES = _gene("g1", "+", [(11, 50), (81, 140)], [(21, 50), (81, 116)]) + \
    _gene("g2", "-", [(161, 220), (251, 290)], [(191, 220), (251, 280)])
PRED_GENES = _gene("p1", "+", [(11, 50), (81, 140)], [(21, 50), (81, 116)]) + \
    _gene("p2", "-", [(161, 220), (256, 290)], [(191, 220), (256, 280)]) + \
    _gene("p3", "+", [(311, 370)], [(321, 350)])


def _sequence():
    """400 bp: start and stop codons of the coding models, GT-AG at the reference introns."""
    seq = ["A"] * 400
    seq[50:52], seq[78:80] = "GT", "AG"  # plus intron 51-80: GT-AG
    seq[248:250], seq[220:222] = "AC", "CT"  # minus intron 221-250: GT-AG on its strand
    seq[20:23], seq[113:116] = "ATG", "TAA"  # g1
    seq[277:280], seq[190:193] = "CAT", "TTA"  # g2 (minus strand)
    seq[320:323], seq[347:350] = "ATG", "TAA"  # p3
    return "".join(seq)


def gff_pair(tmp_path):
    fasta, ref = write_case(tmp_path, _sequence(), REF_GENES, name="ref")
    _, pred = write_case(tmp_path, _sequence(), PRED_GENES, name="pred")
    return fasta, ref, pred


def test_gff3_feature_scores(tmp_path, run_tool):
    fasta, ref, pred = gff_pair(tmp_path)
    report = run(run_tool, tmp_path / "out", "--reference", ref, "--predictions", pred, ref,
                 "--names", "perturbed", "same", "--fasta", fasta, "--subsequence-length", 90)
    feats = report["predictions"][0]["features"]
    expected = {"gene": (3, 2, 2), "transcript": (3, 2, 1), "exon": (5, 4, 3),
                "intron": (2, 2, 1), "cds_structure": (3, 2, 1)}
    for level, (n_pred, n_ref, matched) in expected.items():
        f = feats[level]
        assert (f["predicted"], f["reference"], f["matched"]) == (n_pred, n_ref, matched), level
    assert feats["gene"]["precision"] == pytest.approx(2 / 3) and feats["gene"]["recall"] == 1
    assert feats["exon"]["f1"] == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    assert feats["cds_structure"]["precision"] == pytest.approx(1 / 3)
    assert feats["cds_structure"]["recall"] == pytest.approx(1 / 2)
    same = report["predictions"][1]
    assert all(v["f1"] == 1.0 for v in same["features"].values())
    assert same["genic_f1"] == 1.0 and same["phase_f1"] == 1.0
    assert report["predictions"][0]["genic_f1"] < 1.0
    ann = {a["name"]: a for a in report["annotations"]}
    assert ann["reference"]["counts"] == {"genes": 2, "transcripts": 2, "mono_exon_genes": 0,
                                          "multi_exon_genes": 2, "exons": 4, "introns": 2}
    assert ann["perturbed"]["counts"]["mono_exon_genes"] == 1
    assert ann["reference"]["lengths"]["intron"]["n"] == 2
    assert ann["reference"]["lengths"]["gene"]["median"] == 130
    assert (ann["reference"]["splice_sites"]["GT-AG"], ann["reference"]["splice_sites"]["other"]) \
        == (2, 0)
    sites = ann["perturbed"]["splice_sites"]
    assert (sites["GT-AG"], sites["non_canonical"]) == (1, 1)
    assert sites["non_canonical_examples"] == ["chr:221-255(-) TT-AG"]
    # no temporary files left beside the outputs
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "per_sequence.tsv", "report.html", "report.json"]


def test_gff3_prediction_against_h5_reference(tmp_path, run_tool):
    """A GFF3 labelled by the suite equals the geenuff2h5 labels of the same GFF3."""
    from helixtune_tools import geenuff2h5, import2geenuff

    fasta, ref, _ = gff_pair(tmp_path)
    db, h5 = tmp_path / "ref.sqlite3", tmp_path / "ref_labels.h5"
    assert import2geenuff.main([str(a) for a in ("--gff3", ref, "--fasta", fasta, "--db-path",
                                                 db, "--species", "sp", "--quiet")]) == 0
    assert geenuff2h5.main([str(a) for a in ("--input-db-path", db, "--h5-output-path", h5,
                                             "--subsequence-length", "90", "--quiet")]) == 0
    p = run(run_tool, tmp_path / "out", "--reference", h5, "--predictions", ref,
            "--fasta", fasta)["predictions"][0]
    assert p["genic_f1"] == 1.0 and p["base_level"]["n_bases"] == 800
    assert "features" not in p


# ---- HTML report in headless Chromium ----------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install "
                                             "chromium); the HTML report is not rendered")
def test_html_renders_in_chromium(tmp_path, run_tool):
    fasta, ref, pred = gff_pair(tmp_path)
    out = tmp_path / "out"
    run(run_tool, out, "--reference", ref, "--predictions", pred, ref, "--names", "perturbed",
        "same", "--fasta", fasta, "--subsequence-length", 90)
    page = out / "report.html"
    text = page.read_text()
    assert "<script" not in text and "http://" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    shot = tmp_path / "shot.png"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1200,3000", "--virtual-time-budget=3000", "--enable-logging=stderr",
             "--v=0", f"--user-data-dir={tmp_path / 'profile'}"]
    proc = subprocess.run(flags + [f"--screenshot={shot}", page.as_uri()], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not re.findall(r"CONSOLE\(\d+\).*|Uncaught.*", proc.stderr), proc.stderr[-2000:]
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0 and not re.findall(r"CONSOLE\(\d+\)", dom.stderr)
    ids = ["f1-bars", "confusion-0", "confusion-1", "phase-confusion-0", "f1-along-genome",
           "feature-f1", "lengths-gene", "lengths-exon", "lengths-intron"]
    for element_id in ids:
        m = re.search(rf'<svg id="{element_id}"[^>]*>(.*?)</svg>', dom.stdout, re.S)
        assert m and m.group(1).count("<") > 10, f"plot {element_id} missing or empty"
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1200, 3000)
    assert len(np.unique(np.asarray(image.resize((60, 150))))) > 20, "the screenshot looks blank"


# ---- real data ---------------------------------------------------------------------------------

@pytest.mark.realdata
def test_realdata_arabidopsis_perturbed(tmp_path, run_tool, shared_data):
    """TAIR10 (1 %) against a copy without every 4th gene: gene precision 1, gene recall from
    the kept genes, base-level genic precision ~1 and recall < 1; and against itself: F1 = 1."""
    at = shared_data / "arabidopsis_thaliana"
    fasta = at / "at_tair10_1pct.shared.fa.gz"
    lines = gzip.open(at / "at_tair10_1pct.shared.genes.gff3.gz", "rt").read().splitlines()
    genes = [ln.split("\t")[8].split("ID=")[1].split(";")[0] for ln in lines
             if not ln.startswith("#") and ln.split("\t")[2] == "gene"]
    dropped = set(genes[::4])
    out_lines = []
    for ln in lines:
        cols = ln.split("\t")
        if ln.startswith("#") or len(cols) != 9:
            out_lines.append(ln)
            continue
        ident = re.search(r"(?:ID|Parent)=([^;.,]+)", cols[8]).group(1)
        if ident in dropped:
            continue
        out_lines.append(ln)
    pred = tmp_path / "perturbed.gff3"
    pred.write_text("\n".join(out_lines) + "\n")
    ref = tmp_path / "ref.gff3"
    ref.write_text("\n".join(lines) + "\n")
    report = run(run_tool, tmp_path / "out", "--reference", ref, "--predictions", pred, ref,
                 "--names", "dropped", "same", "--fasta", fasta, "--subsequence-length", 21384)
    perturbed, same = report["predictions"]
    assert same["genic_f1"] == 1.0 and same["features"]["gene"]["f1"] == 1.0
    ann = {a["name"]: a for a in report["annotations"]}
    n_ref = ann["reference"]["counts"]["genes"]
    n_pred = ann["dropped"]["counts"]["genes"]
    assert 150 < n_ref < 300 and n_pred < n_ref
    gene = perturbed["features"]["gene"]
    # every kept gene is matched; genes sharing a span count once
    assert gene["precision"] == 1.0 and gene["matched"] == gene["predicted"]
    assert gene["reference"] - gene["predicted"] in (n_ref - n_pred, n_ref - n_pred - 1)
    assert gene["recall"] == pytest.approx(gene["predicted"] / gene["reference"])
    assert 0.5 < perturbed["genic_f1"] < 0.95
    assert perturbed["base_level"]["genic"]["precision"] > 0.99
    assert ann["reference"]["splice_sites"]["non_canonical_fraction"] < 0.02
