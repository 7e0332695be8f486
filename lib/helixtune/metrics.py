"""Helixer's evaluation metrics (spec helixer-formats.md §2.5) as a streaming accumulator.

A confusion matrix over the argmax class per base; bases whose time step (``pool_size`` bases)
has any zero sample weight are dropped. From it: per-class precision/recall/F1 (TP = diagonal,
FP = column - diagonal, FN = row - diagonal), ``genic`` (TP/FP/FN summed over UTR, CDS, intron;
intergenic TP not counted), ``sub_genic`` (CDS + intron summed), ``legacy_cds`` (CDS and intron
merged into one class) and the same for the phase output (``phase``: summed over phases 0, 1, 2).
NaN F1 (nothing predicted and nothing true) is reported as 0, as Helixer does.

Usage::

    acc = ConfusionAccumulator(pool_size=9, phase=True)
    for batch in ...:
        acc.add(y, predictions, sample_weights, phases, predictions_phase)
    report = acc.report()      # a JSON-ready dict; report["genic"]["f1"] selects models
"""
import numpy as np

GENIC_CLASSES = ("ig", "utr", "exon", "intron")      # Helixer's names (exon = CDS)
PHASE_CLASSES = ("no_phase", "phase_0", "phase_1", "phase_2")


def step_mask(sample_weights, pool_size):
    """Per-base bool mask (B, L): False where any base of the base's time step has weight 0.

    ``sample_weights`` (B, L) with L divisible by ``pool_size`` (clip the overhang first)."""
    sw = np.asarray(sample_weights)
    B, L = sw.shape
    if L % pool_size:
        raise ValueError(f"length {L} is not divisible by the pool size {pool_size}")
    steps = (sw.reshape(B, L // pool_size, pool_size) != 0).all(axis=-1)
    return np.repeat(steps, pool_size, axis=1)


def _prf(tp, fp, fn):
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "tp": int(tp), "fp": int(fp), "fn": int(fn)}


def _class_counts(cm):
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    return tp, fp, fn


def scores(cm, names, summed):
    """Per-class scores and the scores of TP/FP/FN summed over the classes ``summed``."""
    cm = np.asarray(cm, dtype=np.int64)
    tp, fp, fn = _class_counts(cm)
    per_class = {name: _prf(tp[i], fp[i], fn[i]) for i, name in enumerate(names)}
    total = _prf(tp[list(summed)].sum(), fp[list(summed)].sum(), fn[list(summed)].sum())
    return per_class, total


def legacy_cds(cm):
    """CDS and intron merged into one class (Helixer's ``legacy_cds``)."""
    cm = np.asarray(cm, dtype=np.int64)
    merged = [2, 3]
    tp = cm[np.ix_(merged, merged)].sum()
    fp = cm[:, merged].sum() - tp
    fn = cm[merged, :].sum() - tp
    return _prf(tp, fp, fn)


def confusion(true_idx, pred_idx, mask, n_classes=4):
    """Confusion matrix (rows true, columns predicted) of the masked bases."""
    t = np.asarray(true_idx)[mask].astype(np.int64)
    p = np.asarray(pred_idx)[mask].astype(np.int64)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes)


class ConfusionAccumulator:
    """Add batches, then ``report()``. Arrays are (B, L, 4) one-hot/probabilities and (B, L)
    sample weights, L divisible by ``pool_size``."""

    def __init__(self, pool_size, phase=False):
        self.pool_size = pool_size
        self.phase = phase
        self.cm = np.zeros((4, 4), dtype=np.int64)
        self.cm_phase = np.zeros((4, 4), dtype=np.int64)
        self.n_bases = 0

    def add(self, y, predictions, sample_weights, phases=None, predictions_phase=None):
        mask = step_mask(sample_weights, self.pool_size)
        self.n_bases += int(mask.sum())
        self.cm += confusion(np.argmax(y, axis=-1), np.argmax(predictions, axis=-1), mask)
        if self.phase and phases is not None and predictions_phase is not None:
            self.cm_phase += confusion(np.argmax(phases, axis=-1),
                                       np.argmax(predictions_phase, axis=-1), mask)
        return self

    def merge(self, other):
        self.cm += other.cm
        self.cm_phase += other.cm_phase
        self.n_bases += other.n_bases
        return self

    def genic_f1(self):
        return scores(self.cm, GENIC_CLASSES, (1, 2, 3))[1]["f1"]

    def report(self):
        per_class, genic = scores(self.cm, GENIC_CLASSES, (1, 2, 3))
        _, sub_genic = scores(self.cm, GENIC_CLASSES, (2, 3))
        out = {"n_bases": self.n_bases, "classes": list(GENIC_CLASSES),
               "confusion_matrix": self.cm.tolist(), "per_class": per_class,
               "genic": genic, "sub_genic": sub_genic, "legacy_cds": legacy_cds(self.cm)}
        if self.phase:
            phase_per_class, phase = scores(self.cm_phase, PHASE_CLASSES, (1, 2, 3))
            out["phase"] = {"classes": list(PHASE_CLASSES),
                            "confusion_matrix": self.cm_phase.tolist(),
                            "per_class": phase_per_class, "phase": phase}
        return out


def format_report(report):
    """Human-readable tables (printed by HybridModel.py --eval)."""
    lines = []

    def table(title, classes, cm, per_class, totals):
        lines.append(title)
        width = max(10, max(len(c) for c in classes) + 1)
        lines.append(" " * width + "".join(f"{c:>14}" for c in classes))
        for name, row in zip(classes, cm):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>14d}" for v in row))
        lines.append(f"{'':<{width}}{'precision':>12}{'recall':>12}{'f1':>12}")
        for name, s in list(per_class.items()) + totals:
            lines.append(f"{name:<{width}}{s['precision']:>12.4f}{s['recall']:>12.4f}"
                         f"{s['f1']:>12.4f}")
        lines.append("")

    table("confusion matrix (rows: reference, columns: predicted)", report["classes"],
          report["confusion_matrix"], report["per_class"],
          [("legacy_cds", report["legacy_cds"]), ("sub_genic", report["sub_genic"]),
           ("genic", report["genic"])])
    if "phase" in report:
        ph = report["phase"]
        table("phase confusion matrix", ph["classes"], ph["confusion_matrix"], ph["per_class"],
              [("phase", ph["phase"])])
    return "\n".join(lines)
