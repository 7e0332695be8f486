#!/usr/bin/env python3
"""Benchmark filter-to-most-certain.py on S. pombe chr I (522 rows of 21384 bp, 5 RNA-seq columns).

Predictions are synthetic (the labels plus noise, written in reverse row order with a coordinates
file, so rows must be paired by (seqid, start, end)). The tool runs in a subprocess per --write-by;
peak RSS is that subprocess's. The floor, measured in the same run, is h5py alone reading data/y
and the predictions and copying half of the rows of every per-row dataset as stored chunks; the
same with the rows inflated and compressed again (what the tool did before) is given beside it.
Wall and CPU seconds are both given (the machine is shared, so CPU time is the steadier figure).
Prints one JSON line. Usage: python benchmarks/filter_to_most_certain.py [SHARED_DATA_DIR]
"""
import json
import os
import pathlib
import sys
import tempfile
import time

import h5py
import numpy as np

import _floors
from _measure import measure_children

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                    os.environ.get("HELIXTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
SRC = DATA / "helixer_h5" / "upstream_0.3.6" / "spombe_chrI.geenuff2h5.rnaseq.h5"
EXE = pathlib.Path(sys.executable).parent / "filter-to-most-certain.py"


def make_predictions(tmp):
    rng = np.random.default_rng(0)
    with h5py.File(SRC) as src, h5py.File(tmp / "preds.h5", "w") as p, \
            h5py.File(tmp / "genome.h5", "w") as g:
        n, L = src["data/y"].shape[:2]
        order = np.arange(n)[::-1]
        d = p.create_dataset("predictions", shape=(n, L, 4), dtype=np.float16, chunks=(1, L, 4),
                             maxshape=(None, L, 4), compression="gzip", shuffle=True)
        for a in range(0, n, 50):
            rows = order[a:a + 50]
            y = src["data/y"][np.sort(rows)][::-1].astype(np.float32)
            e = rng.uniform(0, 0.5, size=(len(rows), 1, 1))
            d[a:a + len(rows)] = y * (1 - e) + np.roll(y, 1, axis=-1) * e
        grp = g.create_group("data")
        for name in ("seqids", "start_ends"):
            grp.create_dataset(name, data=src[f"data/{name}"][:][order])
        p.attrs["test_data_path"] = str(tmp / "genome.h5")
    return n


def floors(tmp):
    """(wall s, CPU s) of h5py alone reading y and the predictions and copying half of the rows
    of every per-row dataset into a new file: as stored chunks (the floor; the values to filter
    on must be inflated), and inflated and compressed again."""
    out = {}
    for how in ("stored", "through_filters"):
        t, c = time.monotonic(), time.process_time()
        with h5py.File(SRC) as src, h5py.File(tmp / "preds.h5") as p, \
                h5py.File(tmp / "floor.h5", "w") as f:
            n = len(src["data/seqids"])
            for d in (src["data/y"], p["predictions"]):
                for a in range(0, n, 100):
                    d[a:a + 100]
            for k in _floors.per_row_datasets(src, n):
                o = _floors.create_like(f, k, src[k], n // 2)
                if how == "stored":
                    _floors.copy_stored(src[k], o, 0, n // 2)
                else:
                    _floors.copy_through_filters(src[k], o, 0, n // 2, 100)
        out[how] = (time.monotonic() - t, time.process_time() - c)
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        n = make_predictions(tmp)
        floor = floors(tmp)
        (floor_s, floor_cpu), (filtered_s, filtered_cpu) = floor["stored"], floor["through_filters"]
        runs = []
        for write_by in (500_000, 6_000_000, 24_000_000):
            wall, rss, cpu = measure_children([EXE, "--h5-to-filter", SRC,
                                               "--predictions", tmp / "preds.h5",
                                               "--keep-fraction", "0.5", "--write-by", write_by,
                                               "--output-file", tmp / "out.h5", "--quiet"])
            runs.append({"write_by": write_by, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                         "rows_per_s": round(n / wall, 1), "peak_rss_mb": round(rss, 1),
                         "wall_ratio_to_floor": round(wall / floor_s, 2),
                         "cpu_ratio_to_floor": round(cpu / floor_cpu, 2)})
    print(json.dumps({"benchmark": "filter-to-most-certain.py", "input": SRC.name, "rows": n,
                      "floor": "h5py: read y + predictions, copy half the rows of every per-row "
                               "dataset as stored chunks",
                      "floor_s": round(floor_s, 2), "floor_cpu_s": round(floor_cpu, 2),
                      "through_filters_s": round(filtered_s, 2),
                      "through_filters_cpu_s": round(filtered_cpu, 2),
                      "runs": runs}))


if __name__ == "__main__":
    main()
