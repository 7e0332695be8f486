#!/usr/bin/env python3
"""Benchmark: routes to full-size HybridModel predictions on the CPU, side by side (issue 16).

One process, the same random-weight model (full-size architecture, 2,105,672 parameters, batch
normalisation statistics perturbed so it is not the identity) and the same rows of random bases:

* ``predict_on_batch``: tf_keras ``model.predict_on_batch`` per batch — the floor the issue
  names (Helixer 0.3.6 predicts this way, plus its own I/O);
* ``tf_function``: today's HybridModel.py route in memory (``prediction.Predictor``: the model
  compiled once as a ``tf.function`` on float16 input);
* ``onnxruntime`` / ``onnxruntime_dft``: ONNX Runtime fed the same weights (``_onnx_graph.py``),
  convolutions as ONNX ``Conv`` or as overlap-save DFT matrix products (fewer multiply-adds);
  only if ``onnxruntime`` and ``onnx`` are installed (they are not dependencies of the suite);
* ``HybridModel.py``: the tool end to end, model file to predictions file, start-up included
  (importing TensorFlow, loading the model, tracing: seconds that a genome's thousands of rows
  make negligible); ``HybridModel.py_marginal``: the same per row beyond the first, from a run
  on the first row alone, scaled to all rows ((wall(N) − wall(1)) × N / (N − 1)).

Per route and batch size: wall and CPU seconds (best of --reps), bp/s, wall relative to
``predict_on_batch``, the largest absolute difference of the predictions from
``predict_on_batch``'s and the largest difference in float16 steps (units in the last place once
both are rounded to float16, as predictions files store them). Also the machine's float32 matrix
product peak (numpy, 4096², --threads) and each route's achieved GFLOP/s (2 × multiply-adds of
convolutions, LSTMs and the dense layer). Prints one JSON line.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import _measure

FULL = dict(cnn_layers=4, lstm_layers=3, units=128, filter_depth=96, kernel_size=10, pool_size=9,
            predict_phase=True)


def multiply_adds_per_bp(arch):
    """Multiply-adds per base of the plain HybridModel (conv, LSTM input and recurrent, dense)."""
    f, k, u, p = arch["filter_depth"], arch["kernel_size"], arch["units"], arch["pool_size"]
    conv = 4 * k * f + (arch["cnn_layers"] - 1) * f * k * f
    lstm_in = p * f
    lstm = 0
    for _ in range(arch["lstm_layers"]):
        lstm += 2 * (lstm_in + u) * 4 * u
        lstm_in = 2 * u
    dense = 2 * u * p * 8
    return conv + (lstm + dense) / p


def gemm_peak_gflops(threads):
    import numpy as np
    a = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a)[0] for _ in range(3))
    return 2 * 4096 ** 3 / best / 1e9


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def float16_steps(a, b):
    """Largest distance in float16 units in the last place between two arrays of probabilities."""
    import numpy as np
    ia = np.asarray(a, np.float16).view(np.int16).astype(np.int32)
    ib = np.asarray(b, np.float16).view(np.int16).astype(np.int32)
    return int(np.abs(ia - ib).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=32, help="rows of --length bp")
    ap.add_argument("--length", type=int, default=21384)
    ap.add_argument("--batch-sizes", default="32,8,2",
                    help="comma-separated; 32 is HybridModel.py's --val-test-batch-size default")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of every route")
    ap.add_argument("--reps", type=int, default=2, help="timings per route; the fastest counts")
    ap.add_argument("--no-tool", action="store_true", help="skip the HybridModel.py route")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["HELIXTUNE_THREADS"] = str(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

    import h5py
    import numpy as np

    from helixtune import network, prediction

    tf, _ = network.setup_tensorflow(threads=args.threads)
    try:
        import _onnx_graph
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as e:
        print(f"prediction_routes: ONNX routes skipped ({e}); pip install onnx onnxruntime",
              file=sys.stderr)
        onnxruntime = None

    rng = np.random.default_rng(args.seed)
    model = network.build_model(**FULL)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            g, b, m, v = layer.get_weights()
            layer.set_weights([g * rng.uniform(0.5, 1.5, g.shape), b + rng.normal(0, 0.1, b.shape),
                               m + rng.normal(0, 0.1, m.shape), v * rng.uniform(0.5, 2, v.shape)])
    L, rows = args.length, args.rows
    x = np.eye(4, dtype=np.float16)[rng.integers(0, 4, (rows, L))]
    bp = rows * L
    flops = 2 * multiply_adds_per_bp(FULL) * bp
    peak = gemm_peak_gflops(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "model.h5")
        network.save_model(model, model_path, include_optimizer=False)
        data_path = os.path.join(tmp, "data.h5")
        _measure.write_random_data_file(data_path, x)
        one_row_path = os.path.join(tmp, "one_row.h5")
        _measure.write_random_data_file(one_row_path, x[:1])
        for batch in map(int, args.batch_sizes.split(",")):
            routes = {"predict_on_batch": lambda b: model.predict_on_batch(b.astype(np.float32))}
            predictor = prediction.Predictor(model, np.float32)
            routes["tf_function"] = predictor
            if onnxruntime is not None:
                for conv in ("direct", "dft"):
                    sess = _onnx_graph.session(model, L, args.threads, conv)
                    routes["onnxruntime" + ("_dft" if conv == "dft" else "")] = \
                        lambda b, s=sess: s.run(None, {"x": b})
            reference = None
            for name, fn in routes.items():
                fn(x[:batch])
                wall = cpu = float("inf")
                for _ in range(args.reps):
                    w, c, outs = _timed(lambda: [fn(x[a:a + batch]) for a in range(0, rows, batch)])
                    wall, cpu = min(wall, w), min(cpu, c)
                genic = np.concatenate([np.asarray(o[0]).reshape(-1, L, 4) for o in outs])
                phase = np.concatenate([np.asarray(o[1]).reshape(-1, L, 4) for o in outs])
                if reference is None:
                    reference = genic, phase
                results.append(_row(name, batch, wall, cpu, bp, flops, (genic, phase), reference))
            del routes, predictor
            if not args.no_tool:
                walls = {}
                for path in (data_path, one_row_path):
                    out = os.path.join(tmp, f"pred_{batch}.h5")
                    wall = cpu = float("inf")
                    for _ in range(args.reps):
                        w, _rss, c = _measure.measure(
                            ["HybridModel.py", "-l", model_path, "-t", path, "-p", out,
                             "--val-test-batch-size", batch, "--quiet"])
                        wall, cpu = min(wall, w), min(cpu, c)
                    walls[path] = wall, cpu
                    if path == data_path:
                        with h5py.File(out) as h5:
                            got = h5["predictions"][:], h5["predictions_phase"][:]
                        results.append(_row("HybridModel.py", batch, wall, cpu, bp, flops, got,
                                            reference))
                (wall_n, cpu_n), (wall_1, cpu_1) = walls[data_path], walls[one_row_path]
                scale = rows / (rows - 1)
                results.append(_row("HybridModel.py_marginal", batch, (wall_n - wall_1) * scale,
                                    (cpu_n - cpu_1) * scale, bp, flops, got, reference))
            base = next(r["wall_s"] for r in results
                        if r["route"] == "predict_on_batch" and r["batch_size"] == batch)
            for r in results:
                if r["batch_size"] == batch:
                    r["wall_vs_predict_on_batch"] = round(r["wall_s"] / base, 3)
    print(json.dumps({"benchmark": "prediction_routes", "params": int(model.count_params()),
                      "rows": rows, "bp": bp, "threads": args.threads,
                      "gemm_peak_gflops": round(peak, 1), "results": results,
                      "peak_rss_mb": round(_measure.self_peak_rss_mb(), 1)}))
    return 0


def _row(route, batch, wall, cpu, bp, flops, got, reference):
    import numpy as np
    diff = max(float(np.abs(np.asarray(g, np.float32) - r).max()) for g, r in zip(got, reference))
    steps = max(float16_steps(g, r) for g, r in zip(got, reference))
    return {"route": route, "batch_size": batch, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "bp_per_s": round(bp / wall), "gflops": round(flops / wall / 1e9, 1),
            "max_abs_diff": diff, "max_float16_steps": steps}


if __name__ == "__main__":
    sys.exit(main())
