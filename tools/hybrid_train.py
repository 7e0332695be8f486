"""Training and fine-tuning for HybridModel.py (Helixer 0.3.6 semantics, spec §2.3-2.5, §3).

Entry point: :func:`train` (called by ``tools/HybridModel.py`` for every training mode).

* Data: every ``training_data*.h5`` / ``validation_data*.h5`` of ``--data-dir`` (several files and
  species). Rows with ``is_annotated`` False or ``err_samples`` False are dropped, as Helixer does.
  Rows are read one HDF5 chunk at a time (bounded memory: a few batches, never a whole file), in an
  order reshuffled every epoch from ``--seed`` and the epoch number, by a background thread that
  keeps ``PREFETCH`` batches ready, so the accelerator never waits on the disk.
* Targets and weights exactly as spec §2.3: ``y``/``phases`` regrouped to (B, L/P, P, 4); a weight
  per P-bp step = 0/1 mask (0 if any base has sample weight 0) x additive class weights x summed
  transition weights (training only; validation uses the mask).
* Loss exactly as spec §2.4: per output sum(w * CE) / (B * T * P), total 0.8 genic + 0.2 phase.
* Model selection on the validation genic F1 (spec §2.5) at every epoch end and every
  ``--check-every-nth-batch`` batches; the best model goes to ``--save-model-path`` as a
  Helixer-compatible HDF5 file; ``--patience`` checks without improvement stop training.
* Kill-safe: after every check a training-state checkpoint (weights, optimizer state, epoch, batch,
  best F1, patience counter, RNG states) is written atomically beside the best model as
  ``<save-model-path>.train_state.npz``. Re-running the same command resumes from it exactly
  (the weights equal those of an uninterrupted run with the same ``--seed``);
  ``--restart-training`` ignores it. It is removed when training finishes.

Deliberate differences from Helixer 0.3.6 (documented, not bugs):
* the first check always saves a model (Helixer saves only once the F1 exceeds 0), and a check
  due at the last batch of an epoch is done once (Helixer checks twice there);
* AdamW is tf_keras's, with weight decay ``--weight-decay / --learning-rate`` so that the decay
  per step equals tensorflow_addons' ``weight_decay * var``;
* the model file holds no optimizer state or training config (Helixer 0.3.6 loads models with
  ``compile=True``; a tf_keras 2.20 optimizer config could break that) - the optimizer state is
  in the training-state checkpoint;
* padded minus-strand rows are used as stored (padding last, aligned with data/X), as our
  predictions are; 0.3.6 moves their padding to the front when reading;
* ``--fine-tune --input-coverage`` keeps the whole pretrained body and gives the hidden layer a
  ReLU; ``--helixer-coverage-quirks`` reproduces Helixer (last BiLSTM dropped, linear layer).
"""
import ast
import glob
import hashlib
import json
import logging
import os
import queue
import sys
import threading
import time

import h5py
import numpy as np

from helixtune import cli

log = logging.getLogger("helixtune.hybridmodel")

LOSS_WEIGHTS = (0.8, 0.2)
COVERAGE_PREFIX = "rnaseq"  # Helixer hard-codes this prefix for --input-coverage
PREFETCH = 4  # batches kept ready by the background reader
LOG_EVERY_S = 60.0  # progress lines when stdout is not a terminal (the bar is shown per epoch)
CHECKPOINT_SUFFIX = ".train_state.npz"


# --------------------------------------------------------------------------------------------
# options


def parse_weight_list(value, n, option):
    """``--class-weights`` / ``--transition-weights``: 'None' (or None) or a list of n numbers."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise cli.UserError(f"{option}: {value!r} is not a list of {n} numbers, "
                                f"e.g. \"[{', '.join(['1'] * n)}]\"", code=2) from None
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise cli.UserError(f"{option}: {value!r} is not a list of {n} numbers", code=2) from None
    if arr.shape != (n,):
        raise cli.UserError(f"{option}: expected {n} weights, got {value!r}", code=2)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise cli.UserError(f"{option}: weights must be finite and >= 0, got {value!r}", code=2)
    return arr


def coverage_norm_of(value):
    """``--coverage-norm``: None / 'None' (raw counts), 'linear' or 'log'."""
    if value is None or value == "None":
        return None
    if value not in ("linear", "log"):
        raise cli.UserError(f"--coverage-norm must be None, linear or log, not {value!r}", code=2)
    return value


def normalise_coverage(counts, norm):
    """Spec §3.2: raw counts, x/100 (linear) or ln(x + 1.1) (log); then float16 like Helixer."""
    counts = counts.astype(np.float32)
    if norm == "linear":
        counts = counts / 100.0
    elif norm == "log":
        counts = np.log(counts + 1.1)
    return counts.astype(np.float16)


# --------------------------------------------------------------------------------------------
# per-step weights (spec §2.3)


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


# --------------------------------------------------------------------------------------------
# data files


class DataFile:
    """One training or validation HDF5 file: checked, with the indices of the rows kept."""

    def __init__(self, path, role, needs):
        self.path = path
        try:
            h5 = h5py.File(path, "r")
        except OSError as e:
            raise cli.UserError(f"{path}: not a readable HDF5 file ({e})") from None
        with h5:
            missing = [name for name in needs if name not in h5]
            if missing:
                why = {"data/phases": " (needed by --predict-phase)",
                       "data/transitions": " (needed by --transition-weights)",
                       f"evaluation/{COVERAGE_PREFIX}_coverage": " (needed by --input-coverage; "
                       "add it with add_ngs_coverage.py --dataset-prefix rnaseq)",
                       f"evaluation/{COVERAGE_PREFIX}_spliced_coverage":
                       " (needed by --input-coverage)"}
                raise cli.UserError(f"{path}: {role} file lacks dataset(s) " + ", ".join(
                    f"{name}{why.get(name, '')}" for name in missing))
            X = h5["data/X"]
            if X.ndim != 3 or X.shape[2] != 4:
                raise cli.UserError(f"{path}: data/X has shape {X.shape}; expected (N, L, 4)")
            self.n_rows, self.length = X.shape[0], X.shape[1]
            for name in needs:
                shape = h5[name].shape
                if shape[0] != self.n_rows or (len(shape) > 1 and shape[1] != self.length):
                    raise cli.UserError(f"{path}: {name} has shape {shape} but data/X "
                                        f"{X.shape}: the rows or lengths differ")
            keep = h5["data/is_annotated"][:] & h5["data/err_samples"][:]
            self.rows = np.flatnonzero(keep).astype(np.int64)
            self.n_bams = None
            cov = f"evaluation/{COVERAGE_PREFIX}_coverage"
            if cov in needs:
                self.n_bams = h5[cov].shape[2]
                spliced = h5[f"evaluation/{COVERAGE_PREFIX}_spliced_coverage"].shape[2]
                if spliced != self.n_bams:
                    raise cli.UserError(f"{path}: {cov} has {self.n_bams} BAM columns but the "
                                        f"spliced coverage {spliced}")


class DataSet:
    """All training (or validation) files of a data directory, read as batches of kept rows."""

    def __init__(self, paths, role, pool_size, predict_phase=False, input_coverage=False,
                 coverage_norm=None, class_weights=None, transition_weights=None):
        self.role = role
        self.pool_size = pool_size
        self.predict_phase = predict_phase
        self.input_coverage = input_coverage
        self.coverage_norm = coverage_norm
        train = role == "training"
        self.class_weights = class_weights if train else None
        self.transition_weights = transition_weights if train else None
        self.needs = ["data/X", "data/y", "data/sample_weights", "data/is_annotated",
                      "data/err_samples"]
        if predict_phase:
            self.needs.append("data/phases")
        if self.transition_weights is not None:
            self.needs.append("data/transitions")
        if input_coverage:
            self.needs += [f"evaluation/{COVERAGE_PREFIX}_coverage",
                           f"evaluation/{COVERAGE_PREFIX}_spliced_coverage"]
        self.files = [DataFile(p, role, self.needs) for p in paths]
        lengths = {f.length for f in self.files}
        if len(lengths) > 1:
            raise cli.UserError(f"{role} files have different subsequence lengths: " + ", ".join(
                f"{os.path.basename(f.path)} {f.length}" for f in self.files))
        self.length = self.files[0].length
        self.n_bams = None
        if input_coverage:
            bams = {f.n_bams for f in self.files}
            if len(bams) > 1:
                raise cli.UserError(f"{role} files have different numbers of BAM columns in "
                                    f"evaluation/{COVERAGE_PREFIX}_coverage: " + ", ".join(
                                        f"{os.path.basename(f.path)} {f.n_bams}"
                                        for f in self.files))
            self.n_bams = bams.pop()
        self.steps = self.length // pool_size
        self.clipped = self.steps * pool_size
        if self.steps == 0:
            raise cli.UserError(f"{role} files: subsequence length {self.length} is shorter "
                                f"than the pool size {pool_size}")
        # (file index, row) of every kept row, in file order
        self.items = np.concatenate([
            np.stack([np.full(len(f.rows), i, dtype=np.int64), f.rows], axis=1)
            for i, f in enumerate(self.files)]) if self.files else np.zeros((0, 2), np.int64)
        self._local = threading.local()

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_local"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    @property
    def channels(self):
        return 4 + (2 * self.n_bams if self.input_coverage else 0)

    def __len__(self):
        return len(self.items)

    def n_batches(self, batch_size):
        return -(-len(self) // batch_size)

    def epoch_order(self, seed, epoch):
        """The row order of one epoch: a permutation fixed by (seed, epoch)."""
        return np.random.default_rng([seed, epoch]).permutation(len(self))

    def batch_indices(self, order, batch_size):
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def _handles(self):
        """Open files (per thread: h5py objects are not shared between threads)."""
        handles = getattr(self._local, "handles", None)
        if handles is None:
            handles = [h5py.File(f.path, "r") for f in self.files]
            self._local.handles = handles
        return handles

    def close(self):
        for h in getattr(self._local, "handles", None) or []:
            h.close()
        self._local.handles = None

    def read_batch(self, positions):
        """Arrays of the kept rows at ``positions`` (indices into ``self.items``).

        Returns a dict: X (B, T*P, C) float16, y and phases (B, T, P, 4) int8, w (B, T) float32.
        """
        items = self.items[np.asarray(positions)]
        B, L, Lc, P, T = len(items), self.length, self.clipped, self.pool_size, self.steps
        h5s = self._handles()
        X = np.empty((B, L, 4), np.float16)
        y = np.empty((B, L, 4), np.int8)
        sw = np.empty((B, L), np.int8)
        ph = np.empty((B, L, 4), np.int8) if self.predict_phase else None
        tr = np.empty((B, L, 6), np.int8) if self.transition_weights is not None else None
        cov = None
        if self.input_coverage:
            cov = np.empty((B, L, 2 * self.n_bams), np.float16)
        for i, (fi, row) in enumerate(items):
            h5 = h5s[fi]
            h5["data/X"].read_direct(X, np.s_[row], np.s_[i])
            h5["data/y"].read_direct(y, np.s_[row], np.s_[i])
            h5["data/sample_weights"].read_direct(sw, np.s_[row], np.s_[i])
            if ph is not None:
                h5["data/phases"].read_direct(ph, np.s_[row], np.s_[i])
            if tr is not None:
                h5["data/transitions"].read_direct(tr, np.s_[row], np.s_[i])
            if cov is not None:
                n = self.n_bams
                cov[i, :, :n] = normalise_coverage(
                    h5[f"evaluation/{COVERAGE_PREFIX}_coverage"][row], self.coverage_norm)
                cov[i, :, n:] = normalise_coverage(
                    h5[f"evaluation/{COVERAGE_PREFIX}_spliced_coverage"][row], self.coverage_norm)
        if cov is not None:
            X = np.concatenate([X, cov], axis=2)
        X, y, sw = X[:, :Lc], y[:, :Lc], sw[:, :Lc]
        w = step_weights(sw, P, y, self.class_weights,
                         None if tr is None else tr[:, :Lc], self.transition_weights)
        batch = {"X": np.ascontiguousarray(X), "y": y.reshape(B, T, P, 4), "w": w}
        if ph is not None:
            batch["phases"] = ph[:, :Lc].reshape(B, T, P, 4)
        return batch


def find_data_files(data_dir):
    """The training and validation files of ``--data-dir`` (Helixer's glob patterns)."""
    if not data_dir:
        raise cli.UserError("training needs -d/--data-dir", code=2)
    if not os.path.isdir(data_dir):
        raise cli.UserError(f"--data-dir {data_dir!r} is not a directory")
    train = sorted(glob.glob(os.path.join(data_dir, "training_data*h5")))
    val = sorted(glob.glob(os.path.join(data_dir, "validation_data*h5")))
    if not train:
        raise cli.UserError(f"{data_dir}: no training_data*.h5 files")
    if not val:
        raise cli.UserError(f"{data_dir}: no validation_data*.h5 files (the validation set is "
                            "empty)")
    return train, val


def open_datasets(args, pool_size):
    """Check and open the training and validation sets (clear errors before any training)."""
    train_paths, val_paths = find_data_files(args.data_dir)
    class_weights = parse_weight_list(getattr(args, "class_weights", None), 4, "--class-weights")
    transition_weights = parse_weight_list(getattr(args, "transition_weights", None), 6,
                                           "--transition-weights")
    common = dict(pool_size=pool_size, predict_phase=bool(args.predict_phase),
                  input_coverage=bool(getattr(args, "input_coverage", False)),
                  coverage_norm=coverage_norm_of(getattr(args, "coverage_norm", None)))
    train = DataSet(train_paths, "training", class_weights=class_weights,
                    transition_weights=transition_weights, **common)
    val = DataSet(val_paths, "validation", **common)
    if train.length != val.length:
        raise cli.UserError(f"training files have subsequence length {train.length} but "
                            f"validation files {val.length}")
    if common["input_coverage"] and train.n_bams != val.n_bams:
        raise cli.UserError(f"training files have {train.n_bams} BAM coverage columns but "
                            f"validation files {val.n_bams}")
    if len(train) == 0:
        raise cli.UserError("no usable training rows: every row of the training files has "
                            "is_annotated False or err_samples False")
    if len(val) == 0:
        raise cli.UserError("the validation set is empty: every row of the validation files has "
                            "is_annotated False or err_samples False")
    if train.length % pool_size:
        log.warning("subsequence length %d is not divisible by the pool size %d: the last %d bp "
                    "of every row are clipped for training", train.length, pool_size,
                    train.length % pool_size)
    log.info("training: %d rows kept of %d in %d file(s); validation: %d of %d in %d file(s); "
             "L %d, pool size %d", len(train), sum(f.n_rows for f in train.files),
             len(train.files), len(val), sum(f.n_rows for f in val.files), len(val.files),
             train.length, pool_size)
    return train, val


_WORKER_SETS = {}


def _worker_init(datasets):
    """Reader process start: keep the datasets (files are opened on first use)."""
    _WORKER_SETS.clear()
    _WORKER_SETS.update(datasets)


def _worker_read(role, positions):
    return _WORKER_SETS[role].read_batch(positions)


class ReaderPool:
    """``--workers`` N > 1: N reader processes decompress and prepare batches in parallel
    (h5py serialises reads within one process, so threads would not help)."""

    def __init__(self, datasets, workers):
        import concurrent.futures
        import multiprocessing

        self.workers = workers
        self.executor = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init, initargs=({d.role: d for d in datasets},))

    def submit(self, dataset, positions):
        return self.executor.submit(_worker_read, dataset.role, positions)

    def close(self):
        self.executor.shutdown(wait=True, cancel_futures=True)


class Prefetcher:
    """Read batches in a background thread, ``depth`` ahead of the consumer, in order; with a
    :class:`ReaderPool` the thread keeps ``depth + workers`` batches in flight in the pool."""

    def __init__(self, dataset, batches, depth=PREFETCH, pool=None):
        self.dataset = dataset
        self.pool = pool
        self.queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, args=(list(batches),), daemon=True)
        self.thread.start()

    def _put(self, item):
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _work(self, batches):
        import collections

        pending = collections.deque()
        try:
            for positions in batches:
                if self.stop.is_set():
                    break
                if self.pool is None:
                    self._put(self.dataset.read_batch(positions))
                    continue
                pending.append(self.pool.submit(self.dataset, positions))
                if len(pending) >= self.queue.maxsize + self.pool.workers:
                    self._put(pending.popleft().result())
            while pending and not self.stop.is_set():
                self._put(pending.popleft().result())
        except BaseException as e:  # surfaced in the consumer
            self._put(e)
        finally:
            for future in pending:
                future.cancel()
            self.dataset.close()
            self.queue.put(None)

    def __iter__(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self):
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self.thread.join()


# --------------------------------------------------------------------------------------------
# loss (spec §2.4) and the TensorFlow steps


def weighted_crossentropy(y_true, y_pred, weights):
    """One output's loss: sum(w[b,t] * CE[b,t,p]) / (B*T*P); w broadcasts over the P axis."""
    import tensorflow as tf
    import tf_keras

    y_true = tf.cast(y_true, y_pred.dtype)
    ce = tf_keras.backend.categorical_crossentropy(y_true, y_pred)  # (B, T, P)
    weighted = ce * tf.cast(weights, ce.dtype)[:, :, None]
    return tf.reduce_sum(weighted) / tf.cast(tf.size(ce), ce.dtype)


def compute_losses(outputs, y, phases, weights):
    """(total, genic, phase) losses of a batch; phase is 0 without a phase head."""
    import tensorflow as tf

    if isinstance(outputs, (list, tuple)) and len(outputs) == 2:
        genic = weighted_crossentropy(y, outputs[0], weights)
        phase = weighted_crossentropy(phases, outputs[1], weights)
        return LOSS_WEIGHTS[0] * genic + LOSS_WEIGHTS[1] * phase, genic, phase
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    genic = weighted_crossentropy(y, outputs, weights)
    return genic, genic, tf.zeros_like(genic)


def numpy_loss(genic_pred, y, weights, phase_pred=None, phases=None, eps=1e-7):
    """Reference computation of spec §2.4 in numpy (used by the tests)."""
    def one(pred, true):
        p = np.clip(pred.astype(np.float64), eps, 1 - eps)
        ce = -(true * np.log(p)).sum(axis=-1)  # (B, T, P)
        return (weights[:, :, None] * ce).sum() / ce.size
    genic = one(genic_pred, y)
    if phase_pred is None:
        return genic, genic, 0.0
    phase = one(phase_pred, phases)
    return LOSS_WEIGHTS[0] * genic + LOSS_WEIGHTS[1] * phase, genic, phase


def genic_f1(cm):
    """Genic F1 of a 4x4 confusion matrix (spec §2.5, hybrid_metrics' definition)."""
    from helixtune_tools import hybrid_metrics

    return hybrid_metrics.scores(cm, hybrid_metrics.GENIC_CLASSES, (1, 2, 3))[1]["f1"]


# --------------------------------------------------------------------------------------------
# training state checkpoint (kill-safe resumption)


def checkpoint_path(save_model_path):
    return save_model_path + CHECKPOINT_SUFFIX


_FINGERPRINT_IGNORES = {"quiet", "debug", "verbose", "epochs", "patience", "restart_training",
                        "func", "command", "workers"}


def fingerprint(args):
    """A hash of the options that decide what a run computes (resuming needs the same ones)."""
    items = {k: v for k, v in sorted(vars(args).items())
             if k not in _FINGERPRINT_IGNORES and not callable(v)}
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()


def _random_generators(model):
    """The tf.random.Generator states of the model's random layers (dropout)."""
    states = []
    for layer in model.submodules:
        rng = getattr(layer, "_random_generator", None)
        gen = getattr(rng, "_generator", None)
        if gen is not None:
            states.append(gen.state)
    return states


def save_checkpoint(path, model, optimizer, meta):
    """Write weights, optimizer state, RNG states and ``meta`` atomically (one .npz file)."""
    arrays = {}
    for i, w in enumerate(model.get_weights()):
        arrays[f"w{i:04d}"] = w
    for i, v in enumerate(optimizer.variables):
        arrays[f"o{i:04d}"] = v.numpy()
    for i, s in enumerate(_random_generators(model)):
        arrays[f"r{i:04d}"] = s.numpy()
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path):
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        weights = [z[k] for k in sorted(k for k in z.files if k.startswith("w"))]
        opt = [z[k] for k in sorted(k for k in z.files if k.startswith("o"))]
        rngs = [z[k] for k in sorted(k for k in z.files if k.startswith("r"))]
    return meta, weights, opt, rngs


def restore_checkpoint(path, model, optimizer, weights, opt, rngs):
    model.set_weights(weights)
    if len(opt) != len(optimizer.variables):
        raise cli.UserError(f"{path}: the checkpoint holds {len(opt)} optimizer variables, the "
                            f"model needs {len(optimizer.variables)}; delete it or use "
                            "--restart-training")
    for var, value in zip(optimizer.variables, opt):
        var.assign(value)
    for var, value in zip(_random_generators(model), rngs):
        var.assign(value)


# --------------------------------------------------------------------------------------------
# the training loop


def make_optimizer(args):
    """adam or adamw (tf_keras) with Helixer's learning rate, weight decay and clip norm.

    Helixer's tensorflow_addons AdamW subtracts ``weight_decay * var`` per step; tf_keras's AdamW
    subtracts ``weight_decay * learning_rate * var``, so it gets weight_decay / learning_rate.
    """
    import tf_keras

    lr = float(args.learning_rate)
    clip = float(args.clip_norm) if args.clip_norm else None
    if args.optimizer == "adam":
        return tf_keras.optimizers.Adam(learning_rate=lr, clipnorm=clip)
    if args.optimizer == "adamw":
        return tf_keras.optimizers.AdamW(learning_rate=lr, clipnorm=clip,
                                         weight_decay=float(args.weight_decay) / lr)
    raise cli.UserError(f"--optimizer must be adam or adamw, not {args.optimizer!r}", code=2)


class Trainer:
    """Custom training loop with Keras-style progress bar, checks, patience and checkpoints."""

    def __init__(self, args, model, train, val, seed):
        import tensorflow as tf
        import tf_keras

        self.tf, self.keras = tf, tf_keras
        self.args, self.model, self.train, self.val, self.seed = args, model, train, val, seed
        self.optimizer = make_optimizer(args)
        self.optimizer.build(model.trainable_variables)
        self.phase = bool(args.predict_phase)
        self.batch_size = int(args.batch_size)
        self.val_batch_size = int(args.val_test_batch_size)
        self.check_every = int(args.check_every_nth_batch or 0)
        self.save_path = args.save_model_path
        self.ckpt = checkpoint_path(self.save_path)
        self.verbose = not getattr(args, "quiet", False)
        self.state = {"epoch": 0, "batch": 0, "best_f1": None, "patience": 0, "stopped": False,
                      "seed": seed, "fingerprint": fingerprint(args), "checks": []}
        self._train_step = tf.function(self._step, reduce_retracing=True)
        workers = int(getattr(args, "workers", 1) or 1)
        self.pool = ReaderPool([train, val], workers) if workers > 1 else None
        self._eval_step = tf.function(self._eval, reduce_retracing=True)

    # steps ------------------------------------------------------------------------------
    def _step(self, X, y, phases, w):
        tf = self.tf
        with tf.GradientTape() as tape:
            out = self.model(tf.cast(X, tf.float32), training=True)
            total, genic, phase = compute_losses(out, y, phases, w)
        variables = self.model.trainable_variables
        grads = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return total, genic, phase

    def _eval(self, X, y, phases, w):
        tf = self.tf
        out = self.model(tf.cast(X, tf.float32), training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        mask = tf.reshape(tf.broadcast_to(w[:, :, None] > 0, tf.shape(y)[:3]), [-1, 1])
        mask = tf.cast(mask, tf.float64)

        def cm(true, pred):
            # one-hot products instead of tf.math.confusion_matrix (a scatter, which has no
            # deterministic GPU kernel under enable_op_determinism); float64 counts are exact
            t = tf.one_hot(tf.reshape(tf.argmax(true, axis=-1), [-1]), 4, dtype=tf.float64)
            p = tf.one_hot(tf.reshape(tf.argmax(pred, axis=-1), [-1]), 4, dtype=tf.float64)
            return tf.cast(tf.matmul(t * mask, p, transpose_a=True), tf.int64)

        genic = cm(y, outs[0])
        phase = cm(phases, outs[1]) if self.phase and len(outs) > 1 else tf.zeros((4, 4),
                                                                                   tf.int64)
        return genic, phase

    def _tensors(self, batch):
        tf = self.tf
        phases = batch.get("phases")
        if phases is None:
            phases = np.zeros((0,), np.int8)
        return (tf.constant(batch["X"]), tf.constant(batch["y"]), tf.constant(phases),
                tf.constant(batch["w"]))

    def train_on_batch(self, batch):
        return [float(v) for v in self._train_step(*self._tensors(batch))]

    def fit_batches(self, batches, start=0, report=None, at_batch=None):
        """Train on ``batches`` (lists of row positions) read by a Prefetcher.

        The losses of step b are read back (a device sync) only after step b+1 is queued, so
        the accelerator is never idle waiting for the host. ``report(b, losses)`` gets them;
        ``at_batch(b)`` runs after step b (all values reported) and returns True to stop.
        Returns True when ``at_batch`` stopped training."""
        reader = Prefetcher(self.train, batches, pool=self.pool)
        pending = None
        try:
            for b, batch in enumerate(reader, start=start + 1):
                losses = self._train_step(*self._tensors(batch))
                if pending is not None and report is not None:
                    report(*pending)
                pending = (b, losses)
                if at_batch is not None and self.check_every and b % self.check_every == 0:
                    if report is not None:
                        report(*pending)
                    pending = None
                    if at_batch(b):
                        return True
            if pending is not None:
                if report is not None:
                    report(*pending)
                else:
                    float(pending[1][0])
        finally:
            reader.close()
        return False

    def validate(self):
        """Confusion matrices (genic, phase) over the whole validation set."""
        order = np.arange(len(self.val))
        batches = self.val.batch_indices(order, self.val_batch_size)
        cm_genic = np.zeros((4, 4), np.int64)
        cm_phase = np.zeros((4, 4), np.int64)
        reader = Prefetcher(self.val, batches, pool=self.pool)
        try:
            for batch in reader:
                g, p = self._eval_step(*self._tensors(batch))
                cm_genic += g.numpy()
                cm_phase += p.numpy()
        finally:
            reader.close()
        return cm_genic, cm_phase

    # checks -----------------------------------------------------------------------------
    def check(self, epoch, batch, epoch_end):
        """Validate; save the best model; count patience; write the checkpoint."""
        t0 = time.monotonic()
        cm_genic, cm_phase = self.validate()
        f1 = genic_f1(cm_genic)
        best = self.state["best_f1"]
        improved = best is None or f1 > best
        where = f"epoch {epoch}" + (" end" if epoch_end else f" batch {batch}")
        log.info("%s: validation genic F1 %.4f (best %s)%s [%.1f s]", where, f1,
                 "none" if best is None else f"{best:.4f}",
                 ", saving the model" if improved else "", time.monotonic() - t0)
        if getattr(self.args, "verbose", False):
            from helixtune_tools import hybrid_metrics
            acc = hybrid_metrics.ConfusionAccumulator(self.train.pool_size, phase=self.phase)
            acc.cm, acc.cm_phase = cm_genic, cm_phase
            log.info("%s", hybrid_metrics.format_report(acc.report()))
        if improved:
            save_model(self.model, self.save_path, self.optimizer)
            self.state["best_f1"] = f1
            self.state["patience"] = 0
        else:
            self.state["patience"] += 1
        if getattr(self.args, "save_every_check", False):
            name = (f"model_e{epoch}_epoch_end.h5" if epoch_end
                    else f"model_e{epoch}_b{batch:06}.h5")
            save_model(self.model, os.path.join(os.path.dirname(os.path.abspath(self.save_path)),
                                                name), self.optimizer)
        self.state["checks"].append({"epoch": epoch, "batch": batch, "genic_f1": f1})
        if self.state["patience"] >= int(self.args.patience):
            log.info("no improvement in %d checks: stopping", self.state["patience"])
            self.state["stopped"] = True
        if epoch_end:
            self.state["epoch"], self.state["batch"] = epoch + 1, 0
        else:
            self.state["epoch"], self.state["batch"] = epoch, batch
        save_checkpoint(self.ckpt, self.model, self.optimizer, self.state)
        return self.state["stopped"]

    # resume -----------------------------------------------------------------------------
    def maybe_resume(self):
        if not os.path.exists(self.ckpt):
            return False
        if getattr(self.args, "restart_training", False):
            log.info("--restart-training: ignoring the checkpoint %s", self.ckpt)
            return False
        meta, weights, opt, rngs = load_checkpoint(self.ckpt)
        if meta.get("fingerprint") != self.state["fingerprint"]:
            raise cli.UserError(f"{self.ckpt} belongs to a training run with other options; "
                                "re-run that command to resume it, or pass --restart-training "
                                "to start afresh (or delete the file)")
        restore_checkpoint(self.ckpt, self.model, self.optimizer, weights, opt, rngs)
        self.state.update(meta)
        log.info("resuming from %s: epoch %d, batch %d, best genic F1 %s", self.ckpt,
                 meta["epoch"], meta["batch"], meta["best_f1"])
        return True

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    # loop -------------------------------------------------------------------------------
    def run(self):
        epochs = int(self.args.epochs)
        n_batches = self.train.n_batches(self.batch_size)
        while not self.state["stopped"] and self.state["epoch"] < epochs:
            epoch, start = self.state["epoch"], self.state["batch"]
            order = self.train.epoch_order(self.seed, epoch)
            batches = self.train.batch_indices(order, self.batch_size)
            if self.verbose:
                print(f"Epoch {epoch + 1}/{epochs}", file=sys.stdout, flush=True)
            tty = sys.stdout.isatty()
            bar = self.keras.utils.Progbar(n_batches, verbose=(1 if tty else 2) if self.verbose
                                           else 0)
            if start:
                bar.update(start)
            last_log = [time.monotonic()]

            def report(b, losses):
                values = [("loss", float(losses[0])), ("genic_loss", float(losses[1]))]
                if self.phase:
                    values.append(("phase_loss", float(losses[2])))
                bar.update(b, values=values)
                if self.verbose and not tty and time.monotonic() - last_log[0] > LOG_EVERY_S:
                    last_log[0] = time.monotonic()
                    log.info("epoch %d: batch %d/%d - %s", epoch + 1, b, n_batches,
                             " - ".join(f"{k}: {v:.4f}" for k, v in values))

            def at_batch(b):
                return (self.check_every and b % self.check_every == 0 and b < n_batches
                        and self.check(epoch, b, epoch_end=False))

            stopped = self.fit_batches(batches[start:], start, report, at_batch)
            if not stopped:
                self.check(epoch, n_batches, epoch_end=True)
        return self.state


def save_model(model, path, optimizer=None):
    """Save a Helixer-compatible HDF5 model atomically (network.py's format, without the
    optimizer: Helixer 0.3.6 loads with compile=True, which a tf_keras 2.20 optimizer config
    could break; the optimizer state lives in the training-state checkpoint instead)."""
    import warnings

    from helixtune import network

    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # "compiled metrics have yet to be built" etc.
    try:
        with warnings.catch_warnings(), cli.atomic_output(path) as tmp:
            warnings.simplefilter("ignore")  # "HDF5 is a legacy format": Helixer's format
            network.save_model(model, tmp, include_optimizer=False)
    finally:
        tf_logger.setLevel(level)


def set_determinism(seed, deterministic):
    import tensorflow as tf
    import tf_keras

    tf_keras.backend.experimental.enable_tf_random_generator()
    tf_keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


# --------------------------------------------------------------------------------------------
# models of the training modes (spec §3.1)


def training_pool_size(args):
    """Pool size: from the loaded model file (never a default), else --pool-size."""
    from helixtune import network

    if args.load_model_path:
        return network.pool_size_from_file(args.load_model_path)
    return int(args.pool_size)


def mode_name(args):
    if args.fine_tune_resume:
        return "fine-tune-resume"
    if args.load_model_path and args.fine_tune:
        return "fine-tune" + (" with coverage" if args.input_coverage else "")
    if args.load_model_path:
        return "resume-training"
    return "from scratch" + (" with coverage" if args.input_coverage else "")


def build_training_model(args, n_bams, pool_size):
    """The model to train, with the right layers trainable, for the mode the options select."""
    from helixtune import network

    quirks = bool(getattr(args, "helixer_coverage_quirks", False))
    hidden_activation = None if quirks else "relu"
    phase = bool(args.predict_phase)
    if not args.load_model_path:
        return network.build_model(
            args.cnn_layers, args.lstm_layers, args.units, args.filter_depth, args.kernel_size,
            pool_size, args.dropout1, args.dropout2, phase, n_bams=n_bams,
            post_coverage_hidden_layer=bool(args.post_coverage_hidden_layer),
            hidden_activation=hidden_activation)
    model = network.load_model(args.load_model_path)
    if args.fine_tune_resume:
        network.set_trainable_from_dense(model)
        return model
    if args.fine_tune:
        if args.input_coverage:
            # Helixer sizes the post-coverage hidden layer from --units (default 32 -> 16)
            return network.insert_coverage_before_hat(
                model, n_bams, pool_size, phase,
                post_coverage_hidden_layer=bool(args.post_coverage_hidden_layer),
                hidden_units=max(1, int(args.units) // 2), hidden_activation=hidden_activation,
                keep_last_lstm=not quirks)
        return network.fine_tune_head(model, pool_size, phase)
    network.set_all_trainable(model)
    return model


def check_model_against_data(model, train, phase, n_bams):
    from helixtune import network

    channels = int(model.inputs[0].shape[-1])
    if channels != train.channels:
        what = (f"{train.channels} (4 bases + 2 x {n_bams} BAM coverage columns)"
                if train.input_coverage else "4 (bases only; add --input-coverage for coverage "
                "models)")
        raise cli.UserError(f"the model takes {channels} input channels but the data provide "
                            f"{what}")
    if phase != network.has_phase(model):
        raise cli.UserError("--predict-phase does not match the model: it has "
                            f"{'two outputs (genic, phase)' if network.has_phase(model) else 'no phase output'}")
    p = network.pool_size(model)
    if p != train.pool_size:
        raise cli.UserError(f"the model's pool size {p} differs from the data pool size "
                            f"{train.pool_size}")


def _peek_checkpoint_seed(args):
    path = checkpoint_path(args.save_model_path)
    if getattr(args, "restart_training", False) or not os.path.exists(path):
        return None
    try:
        with np.load(path) as z:
            return json.loads(bytes(z["meta"]).decode()).get("seed")
    except (OSError, ValueError, KeyError):
        raise cli.UserError(f"{path}: unreadable training checkpoint; delete it or pass "
                            "--restart-training") from None


def train(args):
    """Train or fine-tune as the options say; returns the exit code (0)."""
    from helixtune import network

    t0 = time.monotonic()
    cli.check_writable_output(args.save_model_path)
    pool_size = training_pool_size(args)
    train_set, val_set = open_datasets(args, pool_size)
    n_bams = train_set.n_bams or 0
    seed = _peek_checkpoint_seed(args)
    if seed is None:
        seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    network.setup_tensorflow(gpu_id=getattr(args, "gpu_id", -1),
                             float_precision=getattr(args, "float_precision", "float32"))
    set_determinism(seed, args.seed is not None)
    model = build_training_model(args, n_bams, pool_size)
    check_model_against_data(model, train_set, bool(args.predict_phase), n_bams)
    n_train = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    log.info("mode: %s; %d parameters, %d trainable; seed %d", mode_name(args),
             model.count_params(), n_train, seed)
    if n_train == 0:
        raise cli.UserError("the model has no trainable weights in this mode")
    trainer = Trainer(args, model, train_set, val_set, seed)
    try:
        trainer.maybe_resume()
        state = trainer.run()
    finally:
        trainer.close()
    if os.path.exists(trainer.ckpt):
        os.unlink(trainer.ckpt)
    log.info("training finished after %d check(s) in %.1f s; best validation genic F1 %.4f, "
             "model saved at %s", len(state["checks"]), time.monotonic() - t0,
             state["best_f1"] if state["best_f1"] is not None else float("nan"),
             args.save_model_path)
    return 0
