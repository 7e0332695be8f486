"""Prediction and evaluation with a HybridModel (the test mode of HybridModel.py).

Layout conventions (spec helixer-formats.md §1.5, §4.2):

* The model sees every row in the model layout of :mod:`helixtune.model_inputs` (padded
  minus-strand rows padding-first, as Helixer 0.3.6 and as in training), so the numbers equal
  upstream's and the minus rows of a sequence form one gap-free stream for --overlap.
* The predictions file is ALIGNED WITH data/X (the HelixerPost convention): every row is moved
  back, so position i of a predictions row belongs to position i of the data/X row on both
  strands, and padding is last, as in data/X. (0.3.6 leaves the minus padding first.)
* If L is not a multiple of the pool size P, the last L % P positions (model layout) are not
  predicted; their predictions are 0 and ``n_bases_removed`` records L % P, as in Helixer.

Data are read in blocks of --val-test-batch-size rows by a background thread (bounded queue),
so the next block is read while the current one is predicted, and written by another thread.
"""
import datetime
import hashlib
import json
import logging
import os
import queue
import threading

import h5py
import numpy as np

from helixtune import cli, h5layout, model_inputs, network
from helixtune import metrics

log = logging.getLogger("helixtune.prediction")

_END = object()


# ---- geometry ----------------------------------------------------------------------------------

def contiguous_ranges(start_ends, seqids, species):
    """Split the rows into runs that form one gap-free 5'->3' stream each (for --overlap).

    Rows of one (species, seqid, strand) must be consecutive in the file, in 5'->3' order, each
    starting where the previous one ended, as fasta2h5/geenuff2h5 write them. A gap (rows
    filtered out) starts a new run, with a warning; rows out of order, or a sequence whose rows
    are split by other sequences, raise ``UserError``. Returns a list of (first_row, stop_row)."""
    se = np.asarray(start_ends, dtype=np.int64)

    def key(i):
        return bytes(species[i]), bytes(seqids[i]), bool(se[i, 0] < se[i, 1])

    def where(i):
        return (f"{bytes(seqids[i]).decode(errors='replace')} "
                f"({'plus' if se[i, 0] < se[i, 1] else 'minus'} strand)")

    ranges, closed, first = [], set(), 0
    for i in range(1, len(se)):
        if key(i) == key(i - 1):
            if se[i, 0] == se[i - 1, 1]:
                continue
            forward = key(i)[2]
            if (se[i, 0] < se[i - 1, 1]) == forward:
                raise cli.UserError(
                    f"rows {i - 1} and {i} of {where(i)} are not in 5'->3' order "
                    f"({se[i - 1].tolist()} then {se[i].tolist()}); --overlap needs the rows "
                    "of each sequence in the order fasta2h5/geenuff2h5 write them")
            log.warning("rows %d and %d of %s are not adjacent (%s then %s; a filtered file?): "
                        "--overlap treats them as separate pieces", i - 1, i, where(i),
                        se[i - 1].tolist(), se[i].tolist())
        else:
            closed.add(key(i - 1))
            if key(i) in closed:
                raise cli.UserError(
                    f"the rows of {where(i)} are not together in the file (again at row {i}); "
                    "--overlap needs the rows of each sequence and strand consecutive")
        ranges.append((first, i))
        first = i
    ranges.append((first, len(se)))
    return ranges


def window_offsets(stream_length, window, offset):
    """Window starts 0, o, 2o, ... while a window fits, plus one aligned to the end if needed.

    A stream shorter than a window gets the single window 0 (the caller pads)."""
    if stream_length <= window:
        return [0]
    starts = list(range(0, stream_length - window + 1, offset))
    if starts[-1] + window < stream_length:
        starts.append(stream_length - window)
    return starts


def prefetch(iterable, depth=2):
    """Run ``iterable`` in a background thread, ``depth`` items ahead (bounded memory)."""
    q = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def worker():
        cli.lower_thread_priority()  # reading yields the cores to the model
        try:
            for item in iterable:
                if not put(item):
                    return
            put(_END)
        except BaseException as e:  # handed to the consumer
            put(e)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def blocks(data, rows_per_block):
    """(first_row, block) for consecutive blocks of rows, in file order."""
    for a in range(0, data.n_rows, rows_per_block):
        yield a, data.read(a, min(a + rows_per_block, data.n_rows))


# ---- prediction --------------------------------------------------------------------------------

class Predictor:
    """Runs the model on (B, W, C) arrays, W divisible by P (cast to float16 first: what data/X
    holds); returns (B, W, 4) arrays of ``output_dtype``, cast inside the graph (float16 for
    predictions written as they come, float32 where they are averaged or scored)."""

    def __init__(self, model, output_dtype=np.float32):
        tf, _ = network.tf_modules()
        self.model = model
        self.pool_size = network.pool_size(model)
        self.phase = network.has_phase(model)
        channels = int(model.inputs[0].shape[-1])
        dtype = model.inputs[0].dtype

        out_dtype = tf.as_dtype(output_dtype)

        @tf.function(input_signature=[tf.TensorSpec((None, None, channels), tf.float16)],
                     reduce_retracing=True)
        def fn(x):
            out = model(tf.cast(x, dtype), training=False)
            return [tf.cast(o, out_dtype) for o in (out if isinstance(out, list) else [out])]

        self.fn = fn

    def __call__(self, x):
        outs = self.fn(np.asarray(x, dtype=np.float16))
        B, W = x.shape[:2]
        return [np.asarray(o).reshape(B, W, 4) for o in outs]


def _predict_rows(predictor, x, length):
    """Predict whole rows in model layout; the L % P tail is not predicted (zeros)."""
    P = predictor.pool_size
    kept = length - length % P
    outs = predictor(np.ascontiguousarray(x[:, :kept]))
    if kept < length:
        outs = [np.concatenate([o, np.zeros((o.shape[0], length - kept, 4), o.dtype)], axis=1)
                for o in outs]
    return outs


def predict_plain(data, predictor, batch_size):
    """(first_row, [genic, phase], block) per batch of consecutive rows, no overlap."""
    for a, block in prefetch(blocks(data, batch_size)):
        yield a, _predict_rows(predictor, block["x"], data.length), block


def predict_overlap(data, predictor, batch_size, offset, core_length):
    """Overlapping windows over each contiguous run of rows; cores averaged (spec §4.3).

    The set of windows depends only on the data, never on ``batch_size`` (the number of windows
    predicted at once), so the results do not either. Yields like :func:`predict_plain`, in file
    order, keeping only the rows still needed in memory."""
    L = data.length
    W = L - L % predictor.pool_size
    trim = (W - core_length) // 2
    ranges = contiguous_ranges(data.start_ends, data.seqids, data.species)
    n_out = 2 if predictor.phase else 1
    reader = prefetch(blocks(data, batch_size))
    rows = {}                       # row -> block dict (one row each) still needed
    loaded = 0                      # rows read so far
    acc = {}                        # row -> ([sum arrays], count)

    def need(row):
        nonlocal loaded
        while loaded <= row:
            a, block = next(reader)
            for i in range(len(block["x"])):
                rows[a + i] = {k: v[i] for k, v in block.items()}
            loaded = a + len(block["x"])

    windows = []
    for r0, r1 in ranges:
        starts = window_offsets((r1 - r0) * L, W, offset)
        windows += [(r0, r1, st, k == 0, k == len(starts) - 1) for k, st in enumerate(starts)]

    def window_input(r0, r1, s):
        first, last = r0 + s // L, min(r1 - 1, r0 + (s + W - 1) // L)
        need(last)
        stream = np.concatenate([rows[r]["x"] for r in range(first, last + 1)], axis=0)
        piece = stream[s - (first - r0) * L:][:W]
        if len(piece) < W:  # a one-row range shorter than a window cannot happen (W <= L)
            piece = np.concatenate([piece, np.zeros((W - len(piece),) + piece.shape[1:],
                                                    piece.dtype)])
        return piece

    def add(r0, r1, s, is_first, is_last, preds):
        lo = s + (0 if is_first else trim)
        hi = s + W - (0 if is_last else trim)
        for r in range(r0 + lo // L, min(r1, r0 + (hi - 1) // L + 1)):
            a, b = max(lo, (r - r0) * L), min(hi, (r - r0 + 1) * L)
            sums, count = acc.setdefault(r, ([np.zeros((L, 4), np.float64)
                                              for _ in range(n_out)], np.zeros(L, np.int32)))
            for o in range(n_out):
                sums[o][a - (r - r0) * L:b - (r - r0) * L] += preds[o][a - s:b - s]
            count[a - (r - r0) * L:b - (r - r0) * L] += 1

    next_out = 0

    def finished(upto):
        """Rows < upto are complete: emit them in file order."""
        nonlocal next_out
        while next_out < upto:
            r = next_out
            sums, count = acc.pop(r)
            if (count == 0).any():
                raise AssertionError(f"row {r}: positions not covered by any window core")
            preds = [(s / np.maximum(count, 1)[:, None]).astype(np.float32) for s in sums]
            block = {k: v[None] for k, v in rows.pop(r).items()}
            yield r, [p[None] for p in preds], block
            next_out += 1

    try:
        for j in range(0, len(windows), batch_size):
            batch = windows[j:j + batch_size]
            x = np.stack([window_input(r0, r1, st) for r0, r1, st, _, _ in batch])
            outs = predictor(x)
            for i, (r0, r1, st, is_first, is_last) in enumerate(batch):
                add(r0, r1, st, is_first, is_last, [o[i] for o in outs])
            # rows before the next window's first position are complete
            if j + batch_size < len(windows):
                r0, _, st, _, _ = windows[j + batch_size]
                upto = r0 + st // L
            else:
                upto = data.n_rows
            yield from finished(upto)
    finally:
        reader.close()


# ---- outputs -----------------------------------------------------------------------------------

def md5sum_line(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"{digest.hexdigest()}  {path}"


class PredictionsWriter:
    """Writes predictions rows (file layout) on a background thread."""

    def __init__(self, path, n, length, phase, compression, attrs):
        self.h5 = h5py.File(path, "w")
        self.dsets = [h5layout.create_dataset(self.h5, name, n, length, compression,
                                              dtype=np.float16, tail_shape=(length, 4))
                      for name in (["predictions", "predictions_phase"] if phase
                                   else ["predictions"])]
        for key, value in attrs.items():
            self.h5.attrs[key] = value
        # gzip chunks deflated in threads outside the GIL, by the fast deflate, at a lower
        # priority: on a CPU the model and the writer share the cores (h5layout.RowWriter)
        self.writers = [h5layout.RowWriter(dset, fast=True, background=True)
                        for dset in self.dsets]
        self.q = queue.Queue(maxsize=3)
        self.error = None
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self):
        cli.lower_thread_priority()  # writing yields the cores to the model
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is not None:
                continue
            try:
                a, outs, shifts = item
                for writer, o in zip(self.writers, outs):
                    writer.write(a, model_inputs.to_file_layout(o, shifts))  # cast to float16 there
            except BaseException as e:
                self.error = e

    def write(self, a, outs, shifts):
        """Queue rows a.. (model layout); the thread re-aligns, casts to float16 and writes."""
        if self.error is not None:
            raise self.error
        self.q.put((a, outs, shifts))

    def close(self):
        self.q.put(None)
        self.thread.join()
        for writer in self.writers:
            writer.close()
        self.h5.close()
        if self.error is not None:
            raise self.error


def write_predictions(path, data, stream, phase, compression, attrs, progress=None):
    """Write a prediction stream (model layout) to ``path``, aligned with data/X."""
    writer = PredictionsWriter(path, data.n_rows, data.length, phase, compression, attrs)
    try:
        for a, outs, _ in stream:
            writer.write(a, outs, data.shifts[a:a + len(outs[0])])
            if progress is not None:
                progress.update(len(outs[0]))
    finally:
        writer.close()


def _load(args):
    """The model to predict with (coverage models: from the tuned file, checked)."""
    model = network.load_model(args.load_model_path)
    n_bams = network.coverage_columns(model)
    if args.input_coverage:
        if not os.path.isfile(args.pretrained_model_path):
            raise cli.UserError(f"--pretrained-model-path {args.pretrained_model_path!r} does "
                                "not exist")
        if n_bams <= 0:
            raise cli.UserError(f"{args.load_model_path}: --input-coverage given, but the model "
                                "takes no coverage (4 input channels)")
        pretrained_p = network.pool_size_from_file(args.pretrained_model_path)
        if pretrained_p != network.pool_size(model):
            raise cli.UserError(f"--pretrained-model-path has pool size {pretrained_p}, the "
                                f"tuned model {network.pool_size(model)}: not the model it was "
                                "tuned from")
        if args.predict_phase and not network.has_phase(model):
            raise cli.UserError(f"{args.load_model_path}: --predict-phase given, but the model "
                                "has no phase output")
    elif n_bams:
        raise cli.UserError(f"{args.load_model_path} is a coverage model ({n_bams} BAM "
                            f"column(s)): give --input-coverage, --coverage-norm and "
                            "--pretrained-model-path as for its training")
    return model, n_bams


def eval_output_path(args):
    if args.eval_output:
        return args.eval_output
    base = args.prediction_output_path
    return (base[:-3] if base.endswith(".h5") else base) + ".eval.json"


def run(args):
    """HybridModel.py test mode: write predictions, or --eval metrics."""
    for path, flag in ((args.load_model_path, "--load-model-path"),
                       (args.test_data, "--test-data")):
        if not os.path.isfile(path):
            raise cli.UserError(f"{flag} {path!r} does not exist")
    out_path = eval_output_path(args) if args.eval else args.prediction_output_path
    cli.check_writable_output(out_path)
    network.setup_tensorflow(threads=network.tf_threads(), gpu_id=args.gpu_id,
                             float_precision=args.float_precision)
    model, n_bams = _load(args)
    # written as predicted: float16 straight from the graph; averaged or scored: float32
    predictor = Predictor(model, np.float32 if args.overlap or args.eval else np.float16)
    P = predictor.pool_size
    data = model_inputs.DataFile(
        args.test_data, "test data", ("y", "sample_weights") if args.eval else (), n_bams,
        args.coverage_norm, optional_targets=("phases",) if args.eval and predictor.phase else (),
        coordinates=True)
    phase = "phases" in data.targets
    try:
        if args.eval and args.predict_phase and predictor.phase and not phase:
            raise cli.UserError(f"{args.test_data}: --predict-phase needs data/phases")
        L = data.length
        removed = 0 if args.overlap else L % P  # overlap windows cover every position
        if L % P and not args.overlap:
            log.warning("subsequence length %d is not divisible by the pool size %d: the last "
                        "%d base(s) of each row are not predicted (0 in the predictions; "
                        "n_bases_removed=%d)", L, P, removed, removed)
        if L < P:
            raise cli.UserError(f"{args.test_data}: subsequence length {L} is shorter than the "
                                f"pool size {P}")
        if args.overlap:
            W = L - L % P
            offset = args.overlap_offset or L // 2
            core = args.core_length or int(0.75 * L)
            if core > W:
                raise cli.UserError(f"--core-length {core} is longer than the window ({W})",
                                    code=2)
            if offset > core:
                raise cli.UserError(f"--overlap-offset ({offset}) must not exceed "
                                    f"--core-length ({core})", code=2)
            if L % offset:
                log.warning("subsequence length %d is not divisible by --overlap-offset %d", L,
                            offset)
            stream = predict_overlap(data, predictor, args.val_test_batch_size, offset, core)
        else:
            stream = predict_plain(data, predictor, args.val_test_batch_size)
        progress = cli.Progress("HybridModel.py predict", data.n_rows, "rows")
        if args.eval:
            acc = metrics.ConfusionAccumulator(P, phase=phase)
            kept = L - removed
            for a, outs, block in stream:
                acc.add(block["y"][:, :kept], outs[0][:, :kept],
                        block["sample_weights"][:, :kept],
                        block["phases"][:, :kept] if phase else None,
                        outs[1][:, :kept] if phase else None)
                progress.update(len(outs[0]))
            report = acc.report()
            report.update(model_path=args.load_model_path, test_data=args.test_data,
                          overlap=bool(args.overlap))
            print(metrics.format_report(report))
            with cli.atomic_output(out_path) as tmp:
                with open(tmp, "w") as f:
                    json.dump(report, f, indent=1)
            log.info("genic F1 %.4f; wrote %s", report["genic"]["f1"], out_path)
            return 0
        attrs = {"model_config": network.model_config_of_file(args.load_model_path),
                 "n_bases_removed": np.int64(removed),
                 "test_data_path": str(args.test_data),
                 "model_path": str(args.load_model_path),
                 "timestamp": str(datetime.datetime.now()),
                 "model_md5sum": md5sum_line(args.load_model_path)}
        with cli.atomic_output(out_path) as tmp:
            write_predictions(tmp, data, stream, predictor.phase, args.compression, attrs,
                              progress)
        log.info("wrote %s", out_path)
        return 0
    finally:
        data.close()
