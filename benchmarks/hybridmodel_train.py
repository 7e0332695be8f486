#!/usr/bin/env python3
"""Benchmark: HybridModel.py training steps/s against its floor.

For the full-size architecture (--cnn-layers 4 --filter-depth 96 --kernel-size 10 --lstm-layers 3
--units 128 --pool-size 9 --predict-phase: 2,105,672 parameters) and a small one (1 CNN, 1 BiLSTM
x 32, Helixer's defaults), with class and transition weights:

* floor: the same compiled training step of the same model on the same batches held as in-memory
  device tensors (no HDF5, no weight computation, no host-to-device copies), one sync at the end;
* pipeline: the real training path of HybridModel.py (Trainer.fit_batches: rows shuffled, read
  one HDF5 chunk at a time from gzip files written like geenuff2h5.py's by the background
  Prefetcher, per-step weights computed, tensors built, loss read back one step late).

overhead = pipeline time / floor time - 1 (target <= 0.10); cpu_overhead the same for the process
CPU time (all threads; the fairer figure on a shared machine). Prints one JSON line.
Usage: benchmarks/hybridmodel_train.py [--quick] [--device cpu|gpu] [--steps N] [--batch-size B]
       [--length L] [--arch full|small|both] [--workers N]
GPU example: benchmarks/hybridmodel_train.py --device gpu --batch-size 32 --steps 40 --workers 4
"""
import argparse
import json
import os
import sys
import tempfile
import time

import _measure


def write_training_file(path, rows, L, rng):
    import h5py
    import numpy as np

    from helixtune import h5layout

    with h5py.File(path, "w") as h5:
        g = h5.create_group("data")
        ds = {name: h5layout.create_dataset(g, name, rows, L)
              for name in ("X", "y", "phases", "sample_weights", "transitions", "is_annotated",
                           "err_samples")}
        for i in range(rows):
            cls = np.repeat(rng.integers(0, 4, L // 300 + 1), 300)[:L]
            ds["X"][i] = np.eye(4, dtype=np.float16)[rng.integers(0, 4, L)]
            ds["y"][i] = np.eye(4, dtype=np.int8)[cls]
            ds["phases"][i] = np.eye(4, dtype=np.int8)[np.where(cls == 2, 1 + np.arange(L) % 3,
                                                                0)]
            sw = np.ones(L, np.int8)
            sw[rng.integers(0, L):][:500] = 0
            ds["sample_weights"][i] = sw
            tr = np.zeros((L, 6), np.int8)
            edges = np.flatnonzero(np.diff(cls)) + 1
            tr[edges, rng.integers(0, 6, len(edges))] = 1
            ds["transitions"][i] = tr
        ds["is_annotated"][:] = True
        ds["err_samples"][:] = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps (a smoke run)")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--steps", type=int, default=None,
                    help="timed training steps per measurement (default 3 quick, 6 CPU, 40 GPU)")
    ap.add_argument("--batch-size", type=int, default=None, help="-b (default 2 CPU, 32 GPU)")
    ap.add_argument("--length", type=int, default=21384, help="subsequence length L")
    ap.add_argument("--threads", type=int, default=0, help="TF CPU threads (0: TF default)")
    ap.add_argument("--arch", choices=["full", "small", "both"], default="both")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (the minimum counts)")
    ap.add_argument("--workers", type=int, default=1,
                    help="HybridModel.py --workers: reader processes (1: one thread)")
    args = ap.parse_args()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    steps = args.steps or (3 if args.quick else 6 if args.device == "cpu" else 40)
    batch = args.batch_size or (2 if args.device == "cpu" else 32)

    import numpy as np

    from helixtune import network
    from helixtune_tools import HybridModel
from helixtune_tools.HybridModel import train as training

    tf, K = network.setup_tensorflow(threads=args.threads or None)
    L = args.length
    archs = {"full": ["--cnn-layers", "4", "--filter-depth", "96", "--kernel-size", "10",
                      "--lstm-layers", "3", "--units", "128", "--pool-size", "9"],
             "small": ["--cnn-layers", "1", "--filter-depth", "32", "--kernel-size", "26",
                       "--lstm-layers", "1", "--units", "32", "--pool-size", "9"]}
    chosen = ["full", "small"] if args.arch == "both" else [args.arch]
    rows = steps * batch
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        write_training_file(os.path.join(tmp, "training_data.a.h5"), rows - rows // 2, L, rng)
        write_training_file(os.path.join(tmp, "training_data.b.h5"), rows // 2, L, rng)
        write_training_file(os.path.join(tmp, "validation_data.h5"), 1, L, rng)
        setup_s = time.perf_counter() - t0
        for name in chosen:
            argv = ["-d", tmp, "-s", os.path.join(tmp, "m.h5"), "-b", str(batch),
                    "--predict-phase", "--seed", "1", "--class-weights", "[0.7, 1.6, 1.2, 1.2]",
                    "--transition-weights", "[1, 12, 3, 1, 12, 3]", "--workers",
                    str(args.workers), *archs[name]]
            targs = HybridModel.get_parser().parse_args(argv)
            train, val = training.open_datasets(targs, 9)
            training.set_determinism(1, False)
            model = training.build_training_model(targs, 0, 9)
            trainer = training.Trainer(targs, model, train, val, seed=1)
            batches = train.batch_indices(train.epoch_order(1, 0), batch)
            in_memory = [trainer._tensors(train.read_batch(b)) for b in batches]
            with tf.device("/GPU:0" if args.device == "gpu" else "/CPU:0"):
                in_memory = [tuple(tf.identity(t) for t in ts) for ts in in_memory]
            train.close()
            float(trainer._train_step(*in_memory[0])[0])  # warm-up: trace and allocate
            reps = 1 if args.quick else args.reps
            floor = pipeline = floor_cpu = pipeline_cpu = float("inf")
            for _ in range(reps):
                t0, c0 = time.perf_counter(), time.process_time()
                out = None
                for ts in in_memory:
                    out = trainer._train_step(*ts)
                float(out[0])
                floor = min(floor, time.perf_counter() - t0)
                floor_cpu = min(floor_cpu, time.process_time() - c0)
                t0, c0 = time.perf_counter(), time.process_time()
                trainer.fit_batches(batches)
                pipeline = min(pipeline, time.perf_counter() - t0)
                pipeline_cpu = min(pipeline_cpu, time.process_time() - c0)
            trainer.close()
            results.append({"arch": name, "params": int(model.count_params()), "L": L,
                            "batch_size": batch, "steps": len(batches), "workers": args.workers,
                            "floor_s": round(floor, 3), "pipeline_s": round(pipeline, 3),
                            "floor_steps_per_s": round(len(batches) / floor, 3),
                            "steps_per_s": round(len(batches) / pipeline, 3),
                            "overhead": round(pipeline / floor - 1, 4),
                            "floor_cpu_s": round(floor_cpu, 3),
                            "pipeline_cpu_s": round(pipeline_cpu, 3),
                            "cpu_overhead": round(pipeline_cpu / floor_cpu - 1, 4)})
            del model, trainer, in_memory
    peak = _measure.self_peak_rss_mb()
    print(json.dumps({"benchmark": "hybridmodel_train", "device": args.device,
                      "gpus": len(tf.config.list_physical_devices("GPU")),
                      "quick": args.quick, "results": results, "data_setup_s": round(setup_s, 2),
                      "peak_rss_mb": round(peak, 1), "target_overhead": 0.10}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
