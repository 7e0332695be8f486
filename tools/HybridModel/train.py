"""Training and fine-tuning for HybridModel.py (Helixer 0.3.6 semantics, spec §2.3-2.5, §3).

Entry point: :func:`train` (called by ``tools/HybridModel.py`` for every training mode).

* Data: every ``training_data*.h5`` / ``validation_data*.h5`` of ``--data-dir`` (several files and
  species), read through :mod:`helixtune.model_inputs` exactly as prediction reads its rows
  (padded minus-strand rows padding-first, as Helixer 0.3.6; the same coverage normalisation). Rows with ``is_annotated`` False or ``err_samples`` False are dropped, as Helixer does.
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
* ``--fine-tune --input-coverage`` keeps the whole pretrained body and gives the hidden layer a
  ReLU; ``--helixer-coverage-quirks`` reproduces Helixer (last BiLSTM dropped, linear layer).
"""
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

from helixtune import cli, model_inputs

log = logging.getLogger("helixtune.hybridmodel")

LOSS_WEIGHTS = (0.8, 0.2)
PREFETCH = 4  # batches kept ready by the background reader
LOG_EVERY_S = 60.0  # progress lines when stdout is not a terminal (the bar is shown per epoch)
CHECKPOINT_SUFFIX = ".train_state.npz"


# --------------------------------------------------------------------------------------------
# options


class DataSet:
    """All training (or validation) files of a data directory, read as batches of usable rows
    in model layout (:mod:`helixtune.model_inputs`, the same inputs prediction sees)."""

    def __init__(self, paths, role, pool_size, predict_phase=False, input_coverage=False,
                 coverage_norm=None, class_weights=None, transition_weights=None):
        self.role = role
        self.pool_size = pool_size
        self.predict_phase = predict_phase
        self.input_coverage = input_coverage
        train = role == "training"
        self.class_weights = class_weights if train else None
        self.transition_weights = transition_weights if train else None
        targets = ["y", "sample_weights"] + (["phases"] if predict_phase else [])
        if self.transition_weights is not None:
            targets.append("transitions")
        self.files = [model_inputs.DataFile(p, role, targets, None if input_coverage else 0,
                                            coverage_norm) for p in paths]
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
                                    f"{model_inputs.COVERAGE}: " + ", ".join(
                                        f"{os.path.basename(f.path)} {f.n_bams}"
                                        for f in self.files))
            self.n_bams = bams.pop()
        self.steps = self.length // pool_size
        self.clipped = self.steps * pool_size
        if self.steps == 0:
            raise cli.UserError(f"{role} files: subsequence length {self.length} is shorter "
                                f"than the pool size {pool_size}")
        # (file index, row) of every usable row, in file order
        self.items = np.concatenate([
            np.stack([np.full(len(rows), i, dtype=np.int64), rows], axis=1)
            for i, rows in enumerate(f.usable_rows() for f in self.files)]
        ) if self.files else np.zeros((0, 2), np.int64)

    @property
    def channels(self):
        return self.files[0].channels

    def __len__(self):
        return len(self.items)

    def n_batches(self, batch_size):
        return -(-len(self) // batch_size)

    def epoch_order(self, seed, epoch):
        """The row order of one epoch: a permutation fixed by (seed, epoch)."""
        return np.random.default_rng([seed, epoch]).permutation(len(self))

    def batch_indices(self, order, batch_size):
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def close(self):
        for f in self.files:
            f.close()

    def read_batch(self, positions):
        """Arrays of the usable rows at ``positions`` (indices into ``self.items``).

        Returns a dict: X (B, T*P, C) float16, y and phases (B, T, P, 4) int8, w (B, T) float32.
        """
        items = self.items[np.asarray(positions)]
        B, Lc, P, T = len(items), self.clipped, self.pool_size, self.steps
        rows = [self.files[fi].read(row, row + 1) for fi, row in items]
        X, y, sw = (np.concatenate([r[k][:, :Lc] for r in rows])
                    for k in ("x", "y", "sample_weights"))
        tr = (np.concatenate([r["transitions"][:, :Lc] for r in rows])
              if self.transition_weights is not None else None)
        w = model_inputs.step_weights(sw, P, y, self.class_weights, tr, self.transition_weights)
        batch = {"X": X, "y": y.reshape(B, T, P, 4), "w": w}
        if self.predict_phase:
            batch["phases"] = np.concatenate([r["phases"][:, :Lc] for r in rows]).reshape(
                B, T, P, 4)
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
    class_weights, transition_weights = (
        None if w is None else np.asarray(w, np.float32)
        for w in (getattr(args, "class_weights", None), getattr(args, "transition_weights", None)))
    common = dict(pool_size=pool_size, predict_phase=bool(args.predict_phase),
                  input_coverage=bool(getattr(args, "input_coverage", False)),
                  coverage_norm=model_inputs.coverage_norm_of(getattr(args, "coverage_norm", None)))
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
    """Genic F1 of a 4x4 confusion matrix (spec §2.5, metrics' definition)."""
    from helixtune import metrics

    return metrics.scores(cm, metrics.GENIC_CLASSES, (1, 2, 3))[1]["f1"]


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
    with cli.atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())


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
        workers = cli.thread_budget(workers)
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
                cli.stage("progress")  # training under way (tests stop the run here)
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
            from helixtune import metrics
            acc = metrics.ConfusionAccumulator(self.train.pool_size, phase=self.phase)
            acc.cm, acc.cm_phase = cm_genic, cm_phase
            log.info("%s", metrics.format_report(acc.report()))
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


def phase_from_loaded_model(args):
    """Set ``args.predict_phase`` from the loaded model: architecture comes from the model, so a
    model with a phase output keeps it (and trains it on data/phases) even without
    --predict-phase. A model without one can only gain it with --fine-tune (a new head)."""
    from helixtune import network

    path = args.load_model_path
    model_phase = network.has_phase_in_file(path)
    if model_phase and not args.predict_phase:
        log.info("%s predicts phase: its phase output is kept and trained on data/phases (as "
                 "with --predict-phase)", path)
        args.predict_phase = True
        check_phases_in_data(args.data_dir, path)
    elif args.predict_phase and not model_phase and not args.fine_tune:
        raise cli.UserError(f"--predict-phase: {path} has no phase output (only --fine-tune, "
                            "which builds a new head, can add one)", code=2)


def check_phases_in_data(data_dir, model_path):
    """Stop before any work when a training/validation file lacks data/phases that the loaded
    model's phase output needs."""
    import h5py

    train_paths, val_paths = find_data_files(data_dir)
    for path in train_paths + val_paths:
        try:
            with h5py.File(path, "r") as h5:
                present = isinstance(h5.get("data/phases"), h5py.Dataset)
        except OSError:
            continue  # reported as unreadable when the data sets are opened
        if not present:
            raise cli.UserError(
                f"{path} lacks data/phases, which the phase output of {model_path} is trained "
                "on: recreate the file with geenuff2h5.py (it writes data/phases), or fine-tune "
                "a model without a phase output")


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
    if args.load_model_path:
        phase_from_loaded_model(args)
    train_set, val_set = open_datasets(args, pool_size)
    n_bams = train_set.n_bams or 0
    seed = _peek_checkpoint_seed(args)
    if seed is None:
        seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    network.setup_tensorflow(threads=network.tf_threads(), gpu_id=getattr(args, "gpu_id", -1),
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
