"""What the network sees: rows of a Helixer data file turned into model inputs and targets, the
same way for training, prediction, evaluation and Helixer.py.

The model layout (chosen once, here): padded minus-strand rows have their padding moved to the
FRONT of the row, as Helixer 0.3.6 does when it reads a file (``_fix_reverse_strand_padding``) in
training and in prediction alike. Reasons: the released models were trained on that layout, so
their numbers equal upstream's; and with it the minus rows of a sequence form one gap-free
5'->3' stream, which ``--overlap`` windows need. Files keep Helixer's storage layout (padding
last on both strands) and our predictions files are moved back to it, so they stay aligned with
``data/X`` (the HelixerPost convention).

Coverage (spec helixer-formats.md §3.2): raw counts, x/100 (``linear``) or ln(x + 1.1) (``log``)
computed in float64 like Helixer's ``_cov_norm``, then float16; appended to the 4 base channels as
[coverage of each BAM, spliced coverage of each BAM].
"""
import threading

import h5py
import numpy as np

from helixtune import h5layout
from helixtune.cli import UserError

COVERAGE_PREFIX = "rnaseq"  # Helixer hard-codes this prefix for --input-coverage
COVERAGE = f"evaluation/{COVERAGE_PREFIX}_coverage"
SPLICED_COVERAGE = f"evaluation/{COVERAGE_PREFIX}_spliced_coverage"
#: why a dataset is needed, for the error when it is missing
_NEEDED_BY = {"data/phases": "--predict-phase", "data/transitions": "--transition-weights",
              "data/y": "labels (training or --eval)",
              "data/sample_weights": "labels (training or --eval)",
              COVERAGE: "--input-coverage; add it with add_ngs_coverage.py --dataset-prefix rnaseq",
              SPLICED_COVERAGE: "--input-coverage; add it with add_ngs_coverage.py "
                                "--dataset-prefix rnaseq"}


# ---- layout ------------------------------------------------------------------------------------

def minus_padding_shifts(start_ends, length):
    """Per row: how far it is rolled into model layout. ``length - n_valid`` for padded
    minus-strand rows (start > end, |start - end| < length), else 0."""
    se = np.asarray(start_ends, dtype=np.int64).reshape(-1, 2)
    n_valid = np.abs(se[:, 1] - se[:, 0])
    minus = se[:, 0] > se[:, 1]
    return np.where(minus & (n_valid < length), length - n_valid, 0)


def to_model_layout(rows, shifts):
    """Roll each row (axis 1) forward by its shift: storage layout -> model layout."""
    if not np.any(shifts):
        return rows
    out = np.array(rows, copy=True)
    for i, s in enumerate(shifts):
        if s:
            out[i] = np.roll(rows[i], s, axis=0)
    return out


def to_file_layout(rows, shifts):
    """Inverse of :func:`to_model_layout`."""
    return to_model_layout(rows, [-s for s in shifts])


# ---- coverage ----------------------------------------------------------------------------------

def coverage_norm_of(value):
    """``--coverage-norm``: None / 'None' (raw counts), 'linear' or 'log'."""
    if value is None or value == "None":
        return None
    if value not in ("linear", "log"):
        raise UserError(f"--coverage-norm must be None, linear or log, not {value!r}", code=2)
    return value


def normalise_coverage(counts, norm):
    """Raw counts, x/100 (linear) or ln(x + 1.1) (log), in float64 as Helixer; then float16."""
    counts = np.asarray(counts, dtype=np.float64)
    if norm == "log":
        counts = np.log(counts + 1.1)
    elif norm == "linear":
        counts = counts / 100
    elif norm is not None:
        raise ValueError(f"unknown coverage normalisation {norm!r}")
    with np.errstate(over="ignore"):  # raw counts above 65504 become inf, as in Helixer
        return counts.astype(np.float16)


# ---- per-step weights (spec §2.3) --------------------------------------------------------------

def step_weights(sample_weights, pool_size, y=None, class_weights=None, transitions=None,
                 transition_weights=None):
    """Per time-step weights (B, T) float32 from base-level arrays already clipped to T*P bp.

    mask: 1 where all P bases of the step have sample weight != 0; class weights: the sum of the
    weights of every class present among the step's bases; transition weights: max over the step
    of each transition channel, dotted with the weights, 0 replaced by 1. The product is returned.
    """
    B, Lc = sample_weights.shape
    T = Lc // pool_size
    w = np.all(sample_weights.reshape(B, T, pool_size) != 0, axis=2).astype(np.float32)
    if class_weights is not None:
        present = np.any(y.reshape(B, T, pool_size, -1) != 0, axis=2).astype(np.float32)
        w *= present @ class_weights
    if transition_weights is not None:
        marks = transitions.reshape(B, T, pool_size, -1).max(axis=2).astype(np.float32)
        tsum = marks @ transition_weights
        tsum[tsum == 0] = 1.0
        w *= tsum
    return w


# ---- data files --------------------------------------------------------------------------------

class DataFile:
    """One Helixer data file read as model input: checked on opening, then read in blocks of
    rows in model layout by :meth:`read`. Picklable (reader processes reopen it); every thread
    gets its own HDF5 handle.

    ``targets``: label datasets to read besides X, of "y", "sample_weights", "phases",
    "transitions"; ``optional_targets``: read when the file has them (see ``self.targets``).
    ``n_bams``: coverage columns the model takes (0: none; None: as many as the file has).
    ``coordinates``: require ``start_ends``, ``seqids`` and ``species`` (prediction); without
    it a file lacking ``start_ends`` is read as stored (no row is known to be a minus row).
    """

    def __init__(self, path, role="data", targets=(), n_bams=0, coverage_norm=None,
                 optional_targets=(), coordinates=False):
        self.path, self.role = path, role
        self.coverage_norm = coverage_norm
        self._local = threading.local()
        h5 = self._handle()
        self.targets = tuple(targets) + tuple(t for t in optional_targets if f"data/{t}" in h5)
        coords = ["data/start_ends", "data/seqids", "data/species"]
        needs = ["data/X"] + (coords if coordinates else [])
        needs += [f"data/{t}" for t in self.targets]
        if n_bams != 0:
            needs += [COVERAGE, SPLICED_COVERAGE]
        missing = [name for name in needs
                   if name not in h5 or not isinstance(h5[name], h5py.Dataset)]
        if missing:
            raise UserError(f"{path}: {role} file lacks dataset(s) " + ", ".join(
                name + (f" (needed by {_NEEDED_BY[name]})" if name in _NEEDED_BY else "")
                for name in missing))
        X = h5["data/X"]
        if X.ndim != 3 or X.shape[2] != 4:
            raise UserError(f"{path}: data/X has shape {X.shape}; expected (N, L, 4)")
        self.n_rows, self.length = X.shape[:2]
        for name in needs[1:]:
            shape = h5[name].shape
            if shape[0] != self.n_rows or (name not in coords and shape[1] != self.length):
                raise UserError(f"{path}: {name} has shape {shape} but data/X {X.shape}: the "
                                "rows or lengths differ")
        self.start_ends, self.seqids, self.species = (
            h5layout.read_all(h5[name]) if name in h5 else None for name in coords)
        self.shifts = (np.zeros(self.n_rows, np.int64) if self.start_ends is None else
                       minus_padding_shifts(self.start_ends, self.length))
        self.n_bams = 0
        if n_bams != 0:
            cov, spliced = h5[COVERAGE].shape[2], h5[SPLICED_COVERAGE].shape[2]
            if cov != spliced:
                raise UserError(f"{path}: {COVERAGE} has {cov} BAM columns but the spliced "
                                f"coverage {spliced}")
            if n_bams is not None and cov != n_bams:
                raise UserError(f"{path}: the model was tuned with {n_bams} BAM column(s); "
                                f"the file has {cov} in {COVERAGE}")
            self.n_bams = cov

    def usable_rows(self):
        """Indices of the rows Helixer trains on: ``is_annotated`` and ``err_samples`` True
        (every row where the file lacks these datasets)."""
        h5 = self._handle()
        keep = np.ones(self.n_rows, bool)
        for name in ("data/is_annotated", "data/err_samples"):
            if name in h5:
                keep &= h5layout.read_all(h5[name])
        return np.flatnonzero(keep).astype(np.int64)

    @property
    def channels(self):
        return 4 + 2 * self.n_bams

    def _handle(self):
        h5 = getattr(self._local, "h5", None)
        if h5 is None:
            h5 = h5layout.open_h5(self.path, f"{self.role} file")
            self._local.h5 = h5
        return h5

    def read(self, a, b):
        """Rows [a, b) in model layout: ``x`` (b-a, L, 4 + 2 n_bams) float16 (data/X, then the
        normalised coverage) and one array per target, named as the dataset."""
        h5 = self._handle()
        shifts = self.shifts[a:b]
        x = np.asarray(h5layout.read_rows(h5["data/X"], a, b), dtype=np.float16)
        if self.n_bams:
            x = np.concatenate([x] + [normalise_coverage(h5layout.read_rows(h5[name], a, b),
                                                         self.coverage_norm)
                                      for name in (COVERAGE, SPLICED_COVERAGE)], axis=-1)
        block = {"x": to_model_layout(x, shifts)}
        for t in self.targets:
            block[t] = to_model_layout(h5layout.read_rows(h5[f"data/{t}"], a, b), shifts)
        return block

    def close(self):
        h5 = getattr(self._local, "h5", None)
        if h5 is not None:
            h5.close()
            self._local.h5 = None

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_local"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()
