#!/usr/bin/env python3
"""Benchmark: HybridModel.py prediction throughput (bp/s) against its floor.

For the full-size architecture (4 CNN, 3 BiLSTM x 128, 96 filters: 2,105,672 parameters) and a
small one (1 CNN, 1 BiLSTM x 32, Helixer's defaults), with random weights:

* floor: the same model (the same compiled predictor) on in-memory float16 arrays (data/X's
  dtype; the model casts them), batches of --batch-size rows, no I/O;
* pipeline: the real test-mode path of HybridModel.py (HDF5 read in a background thread,
  re-layout, prediction (float16 out of the graph), gzip-compressed predictions written by a background
  thread) on a gzip data file of random bases written like fasta2h5.py's.

overhead = pipeline time / floor time - 1 (target <= 0.10); cpu_overhead the same on process
CPU time (all threads: the steadier figure on a shared machine). Prints one JSON line.
Usage: benchmarks/hybridmodel_predict.py [--quick] [--device cpu|gpu] [--rows N] [--batch-size B]
                                         [--arch full|small|both] [--reps R]
"""
import argparse
import json
import os
import sys
import tempfile
import time

import _measure


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rows (a smoke run)")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--rows", type=int, default=None,
                    help="rows of 21384 bp (default 8 quick, 32 CPU, 512 GPU)")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="--val-test-batch-size (default 8 CPU, 32 GPU)")
    ap.add_argument("--length", type=int, default=21384)
    ap.add_argument("--threads", type=int, default=0, help="TF CPU threads (0: TF default)")
    ap.add_argument("--arch", choices=["full", "small", "both"], default="both")
    ap.add_argument("--reps", type=int, default=3,
                    help="floor and pipeline are each timed this often, alternating; the "
                         "fastest of each counts (1 with --quick)")
    args = ap.parse_args()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    rows = args.rows or (8 if args.quick else 32 if args.device == "cpu" else 512)
    batch = args.batch_size or (8 if args.device == "cpu" else 32)

    import h5py
    import numpy as np

    from helixtune import model_inputs, network
    from helixtune import prediction

    tf, K = network.setup_tensorflow(threads=args.threads or None)
    L = args.length
    archs = {"full": dict(cnn_layers=4, lstm_layers=3, units=128, filter_depth=96, kernel_size=10,
                          pool_size=9, predict_phase=True),
             "small": dict(cnn_layers=1, lstm_layers=1, units=32, filter_depth=32, kernel_size=26,
                           pool_size=9, predict_phase=True)}
    chosen = ["full", "small"] if args.arch == "both" else [args.arch]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "data.h5")
        rng = np.random.default_rng(0)
        _measure.write_random_data_file(
            data_path, np.eye(4, dtype=np.float16)[rng.integers(0, 4, (rows, L))])
        for name in chosen:
            model = network.build_model(**archs[name])
            predictor = prediction.Predictor(model, np.float16)  # as HybridModel.py's
            data = model_inputs.DataFile(data_path, coordinates=True)
            x_all = model_inputs.to_model_layout(h5py.File(data.path)["data/X"][:], data.shifts)  # float16, as data/X
            predictor(x_all[:batch])  # warm-up: trace and allocate
            reps = 1 if args.quick else args.reps
            floor = pipeline = floor_cpu = pipeline_cpu = float("inf")
            for _ in range(reps):
                t0, c0 = time.perf_counter(), time.process_time()
                for a in range(0, rows, batch):
                    predictor(x_all[a:a + batch])
                floor = min(floor, time.perf_counter() - t0)
                floor_cpu = min(floor_cpu, time.process_time() - c0)
                out = os.path.join(tmp, f"pred_{name}.h5")
                t0, c0 = time.perf_counter(), time.process_time()
                prediction.write_predictions(
                    out, data, prediction.predict_plain(data, predictor, batch),
                    predictor.phase, "gzip", {"model_config": model.to_json()})
                pipeline = min(pipeline, time.perf_counter() - t0)
                pipeline_cpu = min(pipeline_cpu, time.process_time() - c0)
            data.close()
            bp = rows * L
            results.append({"arch": name, "params": int(model.count_params()), "rows": rows,
                            "bp": bp, "batch_size": batch,
                            "floor_s": round(floor, 3), "pipeline_s": round(pipeline, 3),
                            "floor_bp_per_s": round(bp / floor), "bp_per_s": round(bp / pipeline),
                            "overhead": round(pipeline / floor - 1, 4),
                            "cpu_overhead": round(pipeline_cpu / floor_cpu - 1, 4)})
            del model, predictor
    peak = _measure.self_peak_rss_mb()
    print(json.dumps({"benchmark": "hybridmodel_predict", "device": args.device,
                      "gpus": len(tf.config.list_physical_devices("GPU")),
                      "quick": args.quick, "results": results, "peak_rss_mb": round(peak, 1),
                      "target_overhead": 0.10}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
