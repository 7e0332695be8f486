#!/usr/bin/env python3
"""Compare one or more gene annotations (HybridModel.py predictions or GFF3s) with a reference
(labelled HDF5, or GFF3 + FASTA): base-level confusion matrices and Helixer's F1 scores,
exact-coordinate feature scores, an HTML report with plots, JSON and a per-sequence table."""
import collections
import contextlib
import json
import logging
import os
import types

import h5py
import numpy as np

from helixtune import cli, h5layout, metrics, model_inputs
from helixtune.geenuff_import import MIN_INTRON_LENGTH, import_genome
from helixtune.labels import export
from helixtune_tools.compare_annotations import features, report

log = logging.getLogger("helixtune.compare_annotations")

DEFAULT_WRITE_BY = 10_000_000
#: windows of the "F1 along the genome" plot: about this many over the whole genome
TARGET_WINDOWS = 200
CLASS_NAMES = ("intergenic", "UTR", "CDS", "intron")


def get_parser():
    """The command-line parser."""
    parser = cli.new_parser("compare_annotations.py", __doc__)
    io = parser.add_argument_group("Input and output")
    io.add_argument("--reference", required=True,
                    help="reference: a labelled HDF5 file (data/y, data/sample_weights, "
                         "data/phases; from geenuff2h5.py) or a GFF3/GTF (needs --fasta)")
    io.add_argument("--predictions", required=True, nargs="+",
                    help="annotations to score: HybridModel.py predictions files (.h5, argmax of "
                         "the class probabilities), labelled HDF5 files, or GFF3/GTF files "
                         "(need --fasta)")
    io.add_argument("--names", nargs="+",
                    help="a short name per prediction for the report (default: file names)")
    io.add_argument("--prediction-data", nargs="+", metavar="DATA_H5",
                    help="the data file(s) the .h5 predictions were made on (their rows' "
                         "seqids and start_ends): one per .h5 prediction in order, or one for "
                         "those without data/seqids and data/start_ends of their own (default: "
                         "each file's test_data_path attribute)")
    io.add_argument("--predictions-layout", choices=("aligned", "padding-first"),
                    default="aligned",
                    help="where the .h5 predictions of padded minus-strand rows sit: 'aligned' "
                         "with data/X (padding last; HybridModel.py of this suite, HelixerPost) "
                         "or 'padding-first' (Helixer 0.3.6's HybridModel.py)")
    io.add_argument("--fasta",
                    help="genome FASTA: needed for GFF3 inputs (labels) and for the splice-site "
                         "check")
    io.add_argument("--output-dir", required=True,
                    help="directory for report.html, report.json and per_sequence.tsv "
                         "(created if missing)")
    data = parser.add_argument_group("Data layout")
    data.add_argument("--subsequence-length", type=cli.positive_int,
                      help="row length for labelling GFF3s (default: that of the HDF5 inputs, "
                           f"else {h5layout.DEFAULT_SUBSEQUENCE_LENGTH}); HDF5 inputs must have it")
    data.add_argument("--write-by", type=cli.positive_int, default=DEFAULT_WRITE_BY,
                      help="bases compared at a time (bounds memory); rounded down to whole rows")
    cli.add_common_args(parser)
    return parser


# ---- inputs ------------------------------------------------------------------------------------

class Labels:
    """Per-base classes of one HDF5 file, rows addressed by (seqid, start, end).

    ``classes``/``phases``: dataset names whose argmax is the class / phase class (None: no
    phases). ``keys``: the (seqid, start, end) of each row."""

    def __init__(self, path, what, coordinates=None, padding_first=False):
        self.path = path
        self.h5 = h5layout.open_h5(path)
        h5 = self.h5
        if "predictions" in h5:
            self.classes = "predictions"
            self.phases = "predictions_phase" if "predictions_phase" in h5 else None
        elif "data/y" in h5:
            self.classes = "data/y"
            self.phases = "data/phases" if "data/phases" in h5 else None
        else:
            raise cli.UserError(f"{path}: {what} has neither 'predictions' (HybridModel.py) "
                                "nor 'data/y' (labels)")
        self.weights = "data/sample_weights" if "data/sample_weights" in h5 else None
        shape = h5[self.classes].shape
        if len(shape) != 3 or shape[2] != 4:
            raise cli.UserError(f"{path}: {self.classes} has shape {shape}; expected (N, L, 4)")
        self.n_rows, self.length = shape[:2]
        coords = coordinates or path
        with h5py.File(coords, "r") if coordinates else contextlib.nullcontext(h5) as src:
            missing = [n for n in ("data/seqids", "data/start_ends") if n not in src]
            if missing:
                raise cli.UserError(f"{coords}: lacks {', '.join(missing)}, needed to match the "
                                    f"rows of {path} by (seqid, start, end)")
            seqids = h5layout.read_all(src["data/seqids"])
            se = h5layout.read_all(src["data/start_ends"])
        if len(seqids) != self.n_rows:
            raise cli.UserError(f"{coords}: {len(seqids)} rows, but {path} has {self.n_rows}: "
                                "not the data file these predictions were made on")
        self.keys = list(zip((s.decode() for s in seqids), se[:, 0].tolist(), se[:, 1].tolist()))
        #: per row: how far it is rolled back to data/X's layout (padding-first predictions)
        self.shifts = (model_inputs.minus_padding_shifts(se, self.length)
                       if padding_first and self.classes == "predictions" else None)
        self.row_of = {}
        for i, key in enumerate(self.keys):
            if self.row_of.setdefault(key, i) != i:
                raise cli.UserError(f"{coords}: row {i} repeats the coordinates {key} of row "
                                    f"{self.row_of[key]}")

    def read_classes(self, name, rows):
        """Argmax classes (k, L) int8 of rows ``rows`` of dataset ``name``, in data/X's layout."""
        classes = np.argmax(self.read(name, rows), axis=-1).astype(np.int8)
        if self.shifts is None:
            return classes
        return model_inputs.to_file_layout(classes, self.shifts[rows])

    def read(self, name, rows):
        """Rows ``rows`` (sorted or not) of dataset ``name``, read in contiguous runs."""
        rows = np.asarray(rows, dtype=np.int64)
        dset = self.h5[name]
        out = np.empty((len(rows),) + dset.shape[1:], dset.dtype)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
        for run in np.split(np.arange(len(rows)), breaks):
            if len(run):
                a = int(sorted_rows[run[0]])
                out[order[run]] = h5layout.read_rows(dset, a, a + len(run))
        return out

    def close(self):
        self.h5.close()


def is_hdf5(path):
    try:
        return h5py.is_hdf5(path)
    except OSError:
        return False


def label_gff3(gff3, fasta, L, write_by, tmpdir, name):
    """Labels of a GFF3 (the suite's import and export, in ``tmpdir``): the HDF5 path."""
    db, h5 = os.path.join(tmpdir, f"{name}.sqlite3"), os.path.join(tmpdir, f"{name}.h5")
    args = types.SimpleNamespace(gff3=gff3, fasta=fasta, config_file=None,
                                 min_intron_length=MIN_INTRON_LENGTH, strict=False,
                                 species="compare_annotations", accession="",
                                 assembly_version="", acquired_from="")
    stats = collections.Counter()
    stats["_gtf_gene_of"] = {}
    log.info("labelling %s", gff3)
    import_genome(args, db, stats)
    export(db, h5, L, write_by, "gzip", False)
    os.unlink(db)
    return h5


# ---- base level --------------------------------------------------------------------------------

class Tally:
    """Confusion matrices per reference row (classes and phases) of one prediction."""

    def __init__(self, n_rows):
        self.cm = np.zeros((n_rows, 4, 4), np.int64)
        self.cm_phase = np.zeros((n_rows, 4, 4), np.int64)
        self.masked = np.zeros(n_rows, np.int64)
        self.compared = np.zeros(n_rows, bool)

    def add(self, rows, ref_cls, pred_cls, used, ref_phase=None, pred_phase=None):
        """Count rows ``rows`` (reference indices): classes (k, L) int8, used (k, L) bool."""
        k = len(rows)
        self.compared[rows] = True
        offsets = (np.arange(k, dtype=np.int64) * 16)[:, None]
        for target, t, p in ((self.cm, ref_cls, pred_cls), (self.cm_phase, ref_phase, pred_phase)):
            if t is None or p is None:
                continue
            code = (offsets + (t.astype(np.int64) * 4 + p))[used]
            target[rows] += np.bincount(code, minlength=16 * k).reshape(k, 4, 4)


def base_report(cm, cm_phase, phase):
    """Helixer's scores (metrics.ConfusionAccumulator's report) of summed matrices."""
    acc = metrics.ConfusionAccumulator(pool_size=1, phase=phase)
    acc.cm[:] = cm
    acc.n_bases = int(cm.sum())
    if phase:
        acc.cm_phase[:] = cm_phase
    return acc.report()


def compare_bases(ref, preds, write_by):
    """One :class:`Tally` per prediction, reading ``write_by`` bases of rows at a time."""
    L = ref.length
    tallies = [Tally(ref.n_rows) for _ in preds]
    block = max(1, write_by // L)
    se = np.array([k[1:] for k in ref.keys], np.int64).reshape(-1, 2)
    n_valid = np.abs(se[:, 1] - se[:, 0])
    progress = cli.Progress("compare_annotations", ref.n_rows, "rows")
    for a in range(0, ref.n_rows, block):
        b = min(a + block, ref.n_rows)
        rows = np.arange(a, b)
        y = h5layout.read_rows(ref.h5[ref.classes], a, b)
        ref_cls = np.argmax(y, axis=-1).astype(np.int8)
        valid = (np.arange(L)[None, :] < n_valid[a:b, None]) & y.any(axis=-1)
        del y
        weights = (h5layout.read_rows(ref.h5[ref.weights], a, b) != 0 if ref.weights
                   else np.ones_like(valid))
        used = valid & weights
        masked = (valid & ~weights).sum(axis=1)
        ref_phase = (np.argmax(h5layout.read_rows(ref.h5[ref.phases], a, b), axis=-1)
                     .astype(np.int8) if ref.phases else None)
        for pred, tally in zip(preds, tallies):
            found = [(i, pred.row_of.get(ref.keys[r])) for i, r in enumerate(rows)]
            found = [(i, j) for i, j in found if j is not None]
            if not found:
                continue
            sel, prow = (np.array(v, np.int64) for v in zip(*found))
            pred_cls = pred.read_classes(pred.classes, prow)
            pred_phase = (pred.read_classes(pred.phases, prow)
                          if pred.phases and ref_phase is not None else None)
            tally.add(rows[sel], ref_cls[sel], pred_cls, used[sel],
                      None if ref_phase is None else ref_phase[sel], pred_phase)
            tally.masked[rows[sel]] = masked[sel]
        progress.update(b - a)
    return tallies


def sequences_in_order(keys):
    """Sequence IDs in the order they first appear."""
    return list(dict.fromkeys(k[0] for k in keys))


def per_sequence(ref, tally, phase):
    """Scores per sequence (rows compared only)."""
    out = []
    seqids = np.array([k[0] for k in ref.keys], dtype=object)
    for seqid in sequences_in_order(ref.keys):
        rows = np.flatnonzero((seqids == seqid) & tally.compared)
        if not len(rows):
            continue
        rep = base_report(tally.cm[rows].sum(0), tally.cm_phase[rows].sum(0), phase)
        out.append({"seqid": seqid, "compared_bases": rep["n_bases"],
                    "masked_bases": int(tally.masked[rows].sum()),
                    "genic_precision": rep["genic"]["precision"],
                    "genic_recall": rep["genic"]["recall"], "genic_f1": rep["genic"]["f1"],
                    "sub_genic_f1": rep["sub_genic"]["f1"],
                    **{f"{name}_f1": rep["per_class"][c]["f1"]
                       for name, c in zip(CLASS_NAMES, metrics.GENIC_CLASSES)},
                    "phase_f1": rep["phase"]["phase"]["f1"] if phase else None})
    return out


def windows(ref, tallies):
    """F1 along the genome: windows of whole rows over each sequence (both strands), about
    :data:`TARGET_WINDOWS` in all. Returns (window list, genic F1 per prediction per window;
    None where neither side has a genic base among the compared ones: nothing to score)."""
    L = ref.length
    lengths = collections.Counter()
    for seqid, s, e in ref.keys:
        lengths[seqid] = max(lengths[seqid], s, e)
    rows_per_window = max(1, round(sum(lengths.values()) / TARGET_WINDOWS / L))
    size = rows_per_window * L
    index = {}
    for i, (seqid, s, e) in enumerate(ref.keys):
        index.setdefault((seqid, min(s, e) // size), []).append(i)
    order = [(seqid, w) for seqid in sequences_in_order(ref.keys)
             for w in range(-(-lengths[seqid] // size)) if (seqid, w) in index]
    wins = [{"seqid": seqid, "start": w * size + 1, "end": min((w + 1) * size, lengths[seqid])}
            for seqid, w in order]
    f1s = []
    for tally in tallies:
        values = []
        for key in order:
            rows = [r for r in index[key] if tally.compared[r]]
            cm = tally.cm[rows].sum(0)
            genic = cm[1:, :].sum() + cm[:, 1:].sum()  # genic bases on either side
            values.append(metrics.scores(cm, metrics.GENIC_CLASSES, (1, 2, 3))[1]["f1"]
                          if genic else None)
        f1s.append(values)
    return {"window_bp": size, "windows": wins}, f1s


# ---- main --------------------------------------------------------------------------------------

def _names(args):
    names = args.names or [os.path.basename(p) for p in args.predictions]
    if len(names) != len(args.predictions):
        raise cli.UserError(f"--names gives {len(names)} name(s) for {len(args.predictions)} "
                            "prediction(s)", code=2)
    if len(set(names)) != len(names):
        raise cli.UserError("prediction names must be distinct (give --names)", code=2)
    return names


def _prediction_data(args, h5_predictions):
    """The coordinates file of each .h5 prediction (None: the file's own data/)."""
    given = args.prediction_data or []
    if given and len(given) not in (1, len(h5_predictions)):
        raise cli.UserError(f"--prediction-data gives {len(given)} file(s) for "
                            f"{len(h5_predictions)} .h5 prediction(s): give one, or one each",
                            code=2)
    out = {}
    for k, path in enumerate(h5_predictions):
        if len(given) > 1:
            out[path] = given[k]
            continue
        with h5py.File(path, "r") as h5:
            if "data/seqids" in h5 and "data/start_ends" in h5:
                out[path] = None  # its own coordinates (a shared file is for the others)
                continue
            attr = h5.attrs.get("test_data_path")
        if given:
            out[path] = given[0]
            continue
        candidates = [] if attr is None else [str(attr), os.path.join(
            os.path.dirname(os.path.abspath(path)), os.path.basename(str(attr)))]
        found = next((c for c in candidates if os.path.isfile(c)), None)
        if found is None:
            raise cli.UserError(f"{path}: the rows' coordinates are unknown (its test_data_path "
                                f"{attr!r} is not found): give --prediction-data")
        out[path] = found
    return out


def _subsequence_length(args, h5_inputs):
    lengths = {}
    for path in h5_inputs:
        with h5py.File(path, "r") as h5:
            name = "predictions" if "predictions" in h5 else "data/y"
            if name in h5:
                lengths[path] = h5[name].shape[1]
    found = set(lengths.values())
    if len(found) > 1:
        raise cli.UserError("the HDF5 inputs have different subsequence lengths: " + ", ".join(
            f"{p} {n}" for p, n in lengths.items()))
    if args.subsequence_length and found and found != {args.subsequence_length}:
        raise cli.UserError(f"--subsequence-length {args.subsequence_length}, but the HDF5 "
                            f"inputs have {found.pop()}", code=2)
    return args.subsequence_length or (found.pop() if found else
                                       h5layout.DEFAULT_SUBSEQUENCE_LENGTH)


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    names = _names(args)
    for opt, paths in (("--reference", [args.reference]), ("--predictions", args.predictions),
                       ("--prediction-data", args.prediction_data or []),
                       ("--fasta", [args.fasta] if args.fasta else [])):
        for path in paths:
            if not os.path.isfile(path):
                raise cli.UserError(f"{opt} {path}: no such file")
    kinds = {p: "h5" if is_hdf5(p) else "gff3" for p in [args.reference] + args.predictions}
    gff3s = [p for p, k in kinds.items() if k == "gff3"]
    if gff3s and not args.fasta:
        raise cli.UserError(f"{gff3s[0]} is a GFF3 (not HDF5): give --fasta to label it", code=2)
    L = _subsequence_length(args, [p for p, k in kinds.items() if k == "h5"])
    write_by = max(L, args.write_by // L * L)
    coords = _prediction_data(args, [p for p in args.predictions if kinds[p] == "h5"])
    os.makedirs(args.output_dir, exist_ok=True)
    for name in ("report.html", "report.json", "per_sequence.tsv"):
        cli.check_writable_output(os.path.join(args.output_dir, name))
    with cli.temporary_dir(os.path.join(args.output_dir, "report.json")) as tmp:
        labelled = {p: label_gff3(p, args.fasta, L, write_by, tmp, f"input{i}")
                    for i, p in enumerate(gff3s)}
        ref = Labels(labelled.get(args.reference, args.reference), "the reference")
        if ref.classes != "data/y":
            raise cli.UserError(f"{args.reference}: the reference must be labels (data/y) or a "
                                "GFF3, not predictions")
        preds = [Labels(labelled[p], "a prediction") if p in labelled else
                 Labels(p, "a prediction", coords[p],
                        args.predictions_layout == "padding-first") for p in args.predictions]
        for path, pred in zip(args.predictions, preds):
            if pred.length != ref.length:
                raise cli.UserError(f"{path}: rows of {pred.length} bp, the reference "
                                    f"{ref.length} bp")
        tallies = compare_bases(ref, preds, write_by)
        results = assemble(args, names, kinds, ref, preds, tallies)
        for labels in [ref] + preds:
            labels.close()
    write_outputs(args.output_dir, results)
    for p in results["predictions"]:
        log.info("%s: genic F1 %.4f", p["name"], p["genic_f1"])
    log.info("wrote %s", os.path.join(args.output_dir, "report.html"))
    return 0


def assemble(args, names, kinds, ref, preds, tallies):
    """Every figure of the report as one JSON-ready dict."""
    from helixtune import __version__

    window_info, window_f1 = windows(ref, tallies)
    out = {"tool": "compare_annotations.py", "version": __version__,
           "reference": {"path": args.reference, "kind": kinds[args.reference],
                         "rows": ref.n_rows},
           "subsequence_length": ref.length, "classes": list(CLASS_NAMES),
           "f1_along_genome": window_info, "predictions": []}
    for name, path, pred, tally, f1s in zip(names, args.predictions, preds, tallies, window_f1):
        n_compared = int(tally.compared.sum())
        if not n_compared:
            raise cli.UserError(f"{path}: no row matches a reference row by (seqid, start, "
                                "end): different genome or subsequence length?")
        phase = ref.phases is not None and pred.phases is not None
        base = base_report(tally.cm.sum(0), tally.cm_phase.sum(0), phase)
        base.update(masked_bases=int(tally.masked.sum()), rows_compared=n_compared,
                    reference_rows_without_prediction=ref.n_rows - n_compared,
                    prediction_rows_without_reference=pred.n_rows - n_compared)
        if ref.n_rows > n_compared:
            log.warning("%s: %d of %d reference rows have no prediction row; they are left out",
                        path, ref.n_rows - n_compared, ref.n_rows)
        out["predictions"].append({
            "name": name, "path": path, "kind": kinds[path], "genic_f1": base["genic"]["f1"],
            "sub_genic_f1": base["sub_genic"]["f1"],
            "phase_f1": base["phase"]["phase"]["f1"] if phase else None,
            "base_level": base, "per_sequence": per_sequence(ref, tally, phase),
            "f1_along_genome": f1s})
    gff_paths = [args.reference] + args.predictions
    if any(kinds[p] == "gff3" for p in gff_paths):
        out["annotations"] = annotation_stats(args, names, kinds)
        if kinds[args.reference] == "gff3":
            ref_models = out["annotations"][0].pop("_models")
            for entry, ann in zip(out["predictions"], out["annotations"][1:]):
                if "_models" in ann:
                    entry["features"] = features.compare(ref_models, ann.pop("_models"))
        for ann in out["annotations"]:
            ann.pop("_models", None)
    return out


def annotation_stats(args, names, kinds):
    """Counts, length distributions and splice sites of every GFF3 input (reference first)."""
    entries = [{"name": "reference", "path": args.reference}] + [
        {"name": n, "path": p} for n, p in zip(names, args.predictions)]
    loaded = []
    for entry in entries:
        if kinds[entry["path"]] != "gff3":
            entry["kind"] = "h5"
            continue
        models = features.Models(entry["path"])
        entry.update(kind="gff3", _models=models, counts=models.counts(), lengths={
            level: features.length_summary(v) for level, v in models.lengths().items()})
        loaded.append(entry)
    for entry, sites in zip(loaded, features.splice_sites([e["_models"] for e in loaded],
                                                          args.fasta)):
        entry["splice_sites"] = sites
    return entries


TSV_COLUMNS = ("prediction", "seqid", "compared_bases", "masked_bases", "genic_precision",
               "genic_recall", "genic_f1", "sub_genic_f1") + tuple(
    f"{c}_f1" for c in CLASS_NAMES) + ("phase_f1",)


def write_outputs(directory, results):
    """report.json, per_sequence.tsv and report.html: all three written to temporary files
    first and renamed together at the end, so a stopped run leaves none of them."""
    with contextlib.ExitStack() as stack:
        json_tmp, tsv_tmp, html_tmp = (
            stack.enter_context(cli.atomic_output(os.path.join(directory, name)))
            for name in ("report.json", "per_sequence.tsv", "report.html"))
        with open(json_tmp, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)
            fh.write("\n")
        with open(tsv_tmp, "w", encoding="utf-8") as fh:
            fh.write("\t".join(TSV_COLUMNS) + "\n")
            for p in results["predictions"]:
                for row in p["per_sequence"]:
                    values = [p["name"]] + [row[c] for c in TSV_COLUMNS[1:]]
                    fh.write("\t".join("" if v is None else f"{v:.6f}" if isinstance(v, float)
                                       else str(v) for v in values) + "\n")
        with open(html_tmp, "w", encoding="utf-8") as fh:
            fh.write(report.html_page(results, features.LENGTH_EDGES.tolist()))


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
