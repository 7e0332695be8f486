#!/usr/bin/env python3
"""Keep the subsequences whose raw predictions agree best with their post-processed labels.

For every row of --h5-to-filter (a geenuff2h5 file made from the post-processed GFF3) the mean
per-base L1 distance between the one-hot labels (data/y) and the raw predictions of the same
region (--predictions, HybridModel.py output) is computed, padding ignored. Rows are paired by
(seqid, start, end), never by position in the file. Rows are stratified by their fraction of
intergenic bases (quantiles), and in each stratum the --keep-fraction rows with the smallest
distance are kept. All per-row datasets (data/*, evaluation/* coverage, ...) of the kept rows are
written in their original order; a JSON report (and the same table on stderr) lists rows and kept
rows per stratum, distance thresholds and kept bases per sequence. No timestamp is written: the
same inputs and --seed give a byte-identical output file.
"""
import argparse
import json
import logging
import os

import h5py
import numpy as np

import helixtune
from helixtune import cli, h5layout, h5rows, model_inputs

log = logging.getLogger("helixtune.filter_to_most_certain")

LAYOUTS = ("auto", "aligned", "padding-first")
SUB_BATCH = 32  # rows scored at once (bounds the float32 temporaries)




def get_parser():
    """The command-line parser (option names of Helixer's filter-to-most-certain.py)."""
    parser = cli.new_parser("filter-to-most-certain.py", __doc__)
    io = parser.add_argument_group("Input and output")
    io.add_argument("--h5-to-filter", required=True,
                    help="HDF5 file to filter: geenuff2h5.py output of the post-processed "
                         "predictions (data/y is used; every per-row dataset is copied)")
    io.add_argument("--predictions", required=True,
                    help="raw HybridModel.py predictions for the same genome and subsequence "
                         "length (dataset 'predictions')")
    io.add_argument("--output-file", required=True, type=cli.h5_output_path,
                    help="filtered HDF5 output file (must end in .h5)")
    io.add_argument("--test-data", default=None,
                    help="the HDF5 file the predictions were made from (fasta2h5.py output); "
                         "its data/seqids and data/start_ends give the coordinates of the "
                         "prediction rows. Default: the predictions' own data/seqids and "
                         "data/start_ends, else the file named by their 'test_data_path' "
                         "attribute")
    io.add_argument("--report", default=None,
                    help="JSON report (strata, thresholds, kept bases per sequence); default: "
                         "the output file with .h5 replaced by .report.json")
    sel = parser.add_argument_group("Selection")
    sel.add_argument("--keep-fraction", type=cli.number_in(0, 1, include_low=False), default=0.5,
                     help="keep this fraction of the subsequences of each stratum")
    sel.add_argument("--n-strata", type=cli.positive_int, default=6,
                     help="number of intergenic-fraction quantile strata (ties merge strata)")
    sel.add_argument("--seed", type=int, default=1,
                     help="seed for breaking ties between equal distances")
    sel.add_argument("--predictions-layout", choices=LAYOUTS, default="auto",
                     help="where padded minus-strand rows of the predictions hold their values: "
                          "'aligned' with data/X (padding last) or 'padding-first' (Helixer "
                          "0.3.6); 'auto' picks the one that agrees better with the labels")
    sel.add_argument("--dry-run", action="store_true",
                     help="compute and report the selection, write no HDF5 file")
    sel.add_argument("--write-by", type=cli.positive_int, default=6_000_000,
                     help="bases read into memory at a time per dataset (bounds memory)")
    cli.add_common_args(parser)
    return parser


def _keys(h5, path):
    seqids = h5layout.read_all(h5["data/seqids"])
    se = h5layout.read_all(h5["data/start_ends"])
    return seqids, se


def prediction_coordinates(preds, preds_path, test_data):
    """(seqids, start_ends, source path) of the prediction rows."""
    if "data/seqids" in preds and "data/start_ends" in preds:
        return (*_keys(preds, preds_path), preds_path)
    source = test_data
    if source is None:
        attr = preds.attrs.get("test_data_path")
        if isinstance(attr, bytes):
            attr = attr.decode()
        if attr and os.path.exists(attr):
            source = attr
        else:
            where = f"its 'test_data_path' attribute names {attr!r}, which does not exist" \
                if attr else "it has no 'test_data_path' attribute"
            raise cli.UserError(
                f"{preds_path}: the prediction rows carry no coordinates and {where}; give "
                "--test-data with the HDF5 file the predictions were made from, so rows can be "
                "paired by (seqid, start, end)")
    try:
        with h5py.File(source, "r") as h5:
            n = h5rows.row_count(h5, source)
            if n != len(preds["predictions"]):
                raise cli.UserError(f"{source} has {n} rows but {preds_path} has "
                                    f"{len(preds['predictions'])}: they do not belong together")
            return (*_keys(h5, source), source)
    except OSError as e:
        raise cli.UserError(f"cannot read {source}: {e}") from None


def pair_rows(lab_ids, lab_se, pred_ids, pred_se, lab_path, pred_path):
    """Index into the prediction rows for every label row, by (seqid, start, end)."""
    index = {}
    for j, (sid, (s, e)) in enumerate(zip(pred_ids, pred_se.tolist())):
        key = (bytes(sid), s, e)
        if key in index:
            raise cli.UserError(f"{pred_path}: row {h5rows.row_label(sid, s, e)} occurs twice")
        index[key] = j
    pairs = np.full(len(lab_ids), -1, dtype=np.int64)
    seen = set()
    for i, (sid, (s, e)) in enumerate(zip(lab_ids, lab_se.tolist())):
        key = (bytes(sid), s, e)
        if key in seen:
            raise cli.UserError(f"{lab_path}: row {h5rows.row_label(sid, s, e)} occurs twice")
        seen.add(key)
        pairs[i] = index.get(key, -1)
    missing = np.flatnonzero(pairs < 0)
    extra = sorted(set(index.values()) - set(pairs[pairs >= 0].tolist()))
    if len(missing) or extra:
        parts = []
        if len(missing):
            shown = ", ".join(h5rows.row_label(lab_ids[i], *lab_se[i]) for i in missing[:5])
            parts.append(f"{len(missing)} rows of {lab_path} have no prediction row ({shown}"
                         f"{', ...' if len(missing) > 5 else ''})")
        if extra:
            shown = ", ".join(h5rows.row_label(pred_ids[j], *pred_se[j]) for j in extra[:5])
            parts.append(f"{len(extra)} prediction rows of {pred_path} have no row in "
                         f"{lab_path} ({shown}{', ...' if len(extra) > 5 else ''})")
        raise cli.UserError("rows are paired by (seqid, start, end) and some have no partner: "
                            + "; ".join(parts) + ". Were both files made from the same FASTA "
                            "with the same --subsequence-length?")
    return pairs


def _read_pred_rows(dset, idx):
    """Rows ``idx`` (any order, unique) of an h5py dataset."""
    order = np.argsort(idx, kind="stable")
    wanted = idx[order]
    if not len(wanted):
        return dset[0:0]
    # read runs of consecutive rows as slices (h5py point selections are slow)
    breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(wanted)]])
    rows = np.concatenate([dset[wanted[s]:wanted[e - 1] + 1] for s, e in zip(starts, ends)])
    out = np.empty_like(rows)
    out[order] = rows
    return out


def score_rows(y, p, shifts):
    """Per-row (L1 distance sum, valid bases, intergenic bases) of labels ``y`` vs ``p``.

    ``shifts[r] > 0`` moves prediction row r left by that many positions first (padding-first
    rows). Padding (positions where y is all zero) is ignored; sums are float64."""
    dist = np.zeros(len(y), dtype=np.float64)
    valid = np.zeros(len(y), dtype=np.int64)
    for a in range(0, len(y), SUB_BATCH):
        yb = y[a:a + SUB_BATCH]
        pb = p[a:a + SUB_BATCH].astype(np.float32)
        for r, shift in enumerate(shifts[a:a + SUB_BATCH]):
            if shift:
                pb[r] = np.roll(pb[r], -int(shift), axis=0)
        is_valid = _any_class(yb)
        np.subtract(yb, pb, out=pb)
        np.abs(pb, out=pb)
        # the classes summed left to right, as a numpy sum over the last axis does (same bits)
        per_base = pb[..., 0].copy()
        for c in range(1, pb.shape[-1]):
            per_base += pb[..., c]
        per_base[~is_valid] = 0
        dist[a:a + SUB_BATCH] = per_base.sum(axis=1, dtype=np.float64)
        valid[a:a + SUB_BATCH] = is_valid.sum(axis=1)
    intergenic = y[..., 0].sum(axis=1, dtype=np.int64)
    return dist, valid, intergenic


def _any_class(y):
    """Positions where any class of the labels is set (one int32 per base for int8 × 4 rows)."""
    if y.dtype.itemsize == 1 and y.shape[-1] == 4 and y.flags.c_contiguous:
        return y.view(np.int32)[..., 0] != 0
    return y.any(axis=-1)


def detect_layout(y_dset, p_dset, pairs, shifts):
    """Compare both layouts on the padded minus rows; returns (layout, evidence dict)."""
    rows = np.flatnonzero(shifts)
    if not len(rows):
        return "aligned", {"padded_minus_rows": 0}
    # one padded minus row per sequence: read SUB_BATCH of them at a time, not all at once
    d_aligned, d_first, valid = (np.zeros(len(rows)) for _ in range(3))
    for a in range(0, len(rows), SUB_BATCH):
        part = rows[a:a + SUB_BATCH]
        y = y_dset[part]
        p = _read_pred_rows(p_dset, pairs[part])
        d_aligned[a:a + len(part)], valid[a:a + len(part)], _ = score_rows(
            y, p, np.zeros(len(part), dtype=np.int64))
        d_first[a:a + len(part)] = score_rows(y, p, shifts[part])[0]
    n = max(int(valid.sum()), 1)
    evidence = {"padded_minus_rows": int(len(rows)),
                "mean_distance_if_aligned": float(d_aligned.sum() / n),
                "mean_distance_if_padding_first": float(d_first.sum() / n)}
    layout = "padding-first" if d_first.sum() < d_aligned.sum() else "aligned"
    return layout, evidence


def stratify(frac, n_strata):
    """(quantile cut points, stratum of each row): cut points strictly below = stratum."""
    cuts = np.quantile(frac, [k / n_strata for k in range(1, n_strata)]) if len(frac) else []
    return np.asarray(cuts, dtype=np.float64), np.searchsorted(cuts, frac, side="left")


def allot(sizes, keep_fraction):
    """Rows to keep per stratum: keep_fraction of each, rounded by largest remainder so the total
    is round(keep_fraction * sum(sizes))."""
    sizes = np.asarray(sizes, dtype=np.int64)
    exact = sizes * keep_fraction
    base = np.floor(exact).astype(np.int64)
    rest = int(np.floor(keep_fraction * sizes.sum() + 0.5)) - int(base.sum())
    order = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[:max(rest, 0)]:
        if base[i] < sizes[i]:
            base[i] += 1
    return base


def select(score, frac, keep_fraction, n_strata, seed):
    """Boolean mask of kept rows and per-stratum statistics."""
    n = len(score)
    scorable = ~np.isnan(score)
    idx = np.flatnonzero(scorable)
    cuts, strata = stratify(frac[idx], n_strata)
    rng = np.random.default_rng(seed)
    tiebreak = rng.permutation(n)
    present = np.unique(strata)
    sizes = [int((strata == s).sum()) for s in present]
    quota = allot(sizes, keep_fraction)
    keep = np.zeros(n, dtype=bool)
    stats = []
    for s, size, k in zip(present, sizes, quota):
        members = idx[strata == s]
        order = members[np.lexsort((tiebreak[members], score[members]))]
        keep[order[:k]] = True
        stats.append({
            "stratum": int(s),
            "intergenic_fraction_min": float(frac[members].min()),
            "intergenic_fraction_max": float(frac[members].max()),
            "rows": size, "kept": int(k),
            "max_kept_distance": float(score[order[k - 1]]) if k else None,
            "min_dropped_distance": float(score[order[k]]) if k < size else None,
        })
    return keep, cuts, stats


def pair_score_select(args, lab, preds):
    """Pair, score and select; returns (keep mask, report dict, per-row valid bases)."""
    lab_path, pred_path = args.h5_to_filter, args.predictions
    n = h5rows.row_count(lab, lab_path)
    if "data/y" not in lab:
        raise cli.UserError(f"{lab_path}: no data/y; --h5-to-filter must be a geenuff2h5.py "
                            "file with labels (the post-processed predictions)")
    if "predictions" not in preds:
        raise cli.UserError(f"{pred_path}: no 'predictions' dataset; --predictions must be "
                            "HybridModel.py output")
    y_dset, p_dset = lab["data/y"], preds["predictions"]
    L, Lp = y_dset.shape[1], p_dset.shape[1]
    if L != Lp or p_dset.shape[2:] != y_dset.shape[2:]:
        raise cli.UserError(f"{lab_path} has subsequence length {L} but {pred_path} has {Lp}: "
                            "run geenuff2h5.py with the --subsequence-length used for the "
                            "predictions")
    if n == 0:
        raise cli.UserError(f"{lab_path} has no rows")
    lab_ids, lab_se = _keys(lab, lab_path)
    pred_ids, pred_se, coord_source = prediction_coordinates(preds, pred_path, args.test_data)
    pairs = pair_rows(lab_ids, lab_se, pred_ids, pred_se, lab_path, pred_path)
    n_moved = int((pairs != np.arange(n)).sum())
    log.info("paired %d rows by (seqid, start, end) using coordinates from %s (%d rows at a "
             "different index)", n, coord_source, n_moved)

    shifts = model_inputs.minus_padding_shifts(lab_se, L)
    evidence = {}
    layout = args.predictions_layout
    if layout == "auto":
        layout, evidence = detect_layout(y_dset, p_dset, pairs, shifts)
        log.info("predictions layout: %s (%s)", layout,
                 ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in evidence.items()))
    if layout == "aligned":
        shifts = np.zeros_like(shifts)

    block = h5rows.rows_per_block(args.write_by, L, log)
    dist = np.zeros(n, dtype=np.float64)
    valid = np.zeros(n, dtype=np.int64)
    intergenic = np.zeros(n, dtype=np.int64)
    progress = cli.Progress("scoring", n, "rows")
    for a in range(0, n, block):
        b = min(a + block, n)
        d, v, g = score_rows(y_dset[a:b], _read_pred_rows(p_dset, pairs[a:b]), shifts[a:b])
        dist[a:b], valid[a:b], intergenic[a:b] = d, v, g
        progress.update(b - a)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = dist / valid
        frac = intergenic / valid
    if (valid == 0).any():
        log.warning("%d rows have no labelled bases (all padding) and are never kept",
                    int((valid == 0).sum()))
    keep, cuts, strata = select(score, frac, args.keep_fraction, args.n_strata, args.seed)
    if not keep.any():
        raise cli.UserError(f"--keep-fraction {args.keep_fraction} keeps no row of {n}; "
                            "use a larger fraction")

    sequences = {}
    for sid, v, k in zip(lab_ids, valid.tolist(), keep.tolist()):
        entry = sequences.setdefault(bytes(sid).decode(errors="replace"),
                                     {"rows": 0, "kept_rows": 0, "bases": 0, "kept_bases": 0})
        entry["rows"] += 1
        entry["bases"] += v
        entry["kept_rows"] += int(k)
        entry["kept_bases"] += v if k else 0
    report = {
        "tool": "filter-to-most-certain.py", "version": helixtune.__version__,
        "h5_to_filter": lab_path, "predictions": pred_path, "coordinates_from": coord_source,
        "keep_fraction": args.keep_fraction, "n_strata": args.n_strata, "seed": args.seed,
        "predictions_layout": layout, "layout_evidence": evidence,
        "rows": n, "rows_kept": int(keep.sum()), "rows_unscorable": int((valid == 0).sum()),
        "bases": int(valid.sum()), "bases_kept": int(valid[keep].sum()),
        "intergenic_fraction_cuts": [float(c) for c in cuts],
        "strata": strata,
        "sequences": [dict(seqid=k, **v) for k, v in sequences.items()],
    }
    return keep, report


def log_report(report):
    log.info("kept %d of %d rows (%d of %d labelled bases)", report["rows_kept"], report["rows"],
             report["bases_kept"], report["bases"])
    log.info("%-8s %-22s %8s %8s %14s %14s", "stratum", "intergenic fraction", "rows", "kept",
             "max kept dist", "min dropped")
    fmt = lambda v: "-" if v is None else f"{v:.6f}"  # noqa: E731
    for s in report["strata"]:
        log.info("%-8d %-22s %8d %8d %14s %14s", s["stratum"],
                 f"{s['intergenic_fraction_min']:.4f}-{s['intergenic_fraction_max']:.4f}",
                 s["rows"], s["kept"], fmt(s["max_kept_distance"]), fmt(s["min_dropped_distance"]))
    for s in report["sequences"]:
        log.info("sequence %s: kept %d of %d rows, %d of %d bases", s["seqid"], s["kept_rows"],
                 s["rows"], s["kept_bases"], s["bases"])


def write_filtered(lab, out_path, keep, args):
    n = len(keep)
    L = h5rows.subsequence_length(lab, args.h5_to_filter)
    with h5py.File(out_path, "w", track_order=False) as out:
        names = h5rows.copy_structure(lab, [out], [int(keep.sum())], n)
        progress = cli.Progress("writing", n * len(names), "dataset rows")
        h5rows.copy_rows(lab, [out], [keep], names, h5rows.rows_per_block(args.write_by, L, log),
                         progress)
        for key in ("h5_to_filter", "predictions", "keep_fraction", "n_strata", "seed"):
            out.attrs[key] = str(getattr(args, key))
        out.attrs["predictions_layout"] = args.layout_used


def _open(path):
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise cli.UserError(f"cannot read HDF5 input {path}: {e}") from None


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    report_path = args.report or (args.output_file[:-3] + ".report.json")
    if not args.dry_run:
        cli.check_writable_output(args.output_file)
    cli.check_writable_output(report_path)
    for path in (args.h5_to_filter, args.predictions):
        if not os.path.exists(path):
            raise cli.UserError(f"{path}: no such file")
    with _open(args.h5_to_filter) as lab, _open(args.predictions) as preds:
        keep, report = pair_score_select(args, lab, preds)
        log_report(report)
        args.layout_used = report["predictions_layout"]
        with cli.atomic_output(report_path) as tmp_report:
            with open(tmp_report, "w") as fh:
                json.dump(report, fh, indent=1)
                fh.write("\n")
            if args.dry_run:
                log.info("--dry-run: no HDF5 output written")
            else:
                with cli.atomic_output(args.output_file) as tmp:
                    write_filtered(lab, tmp, keep, args)
                log.info("wrote %s", args.output_file)
    log.info("wrote %s", report_path)
    return 0


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
