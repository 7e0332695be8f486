#!/usr/bin/env python3
"""Benchmark n90_train_val_split.py on S. pombe chr I (522 rows of 21384 bp, 5 RNA-seq columns).

One chromosome, so --split-within-sequences (default 500 kb blocks). The tool runs in a subprocess
per --write-by; peak RSS is that subprocess's. The floor, measured in the same run, is h5py alone
copying every per-row dataset into two files as stored chunks (all rows once); the same copy
inflated and compressed again (what the tool did before) is given beside it. Wall and CPU
seconds are both given (the machine is shared, so CPU time is the steadier figure).
Prints one JSON line. Usage: python benchmarks/n90_train_val_split.py [SHARED_DATA_DIR]
"""
import json
import os
import pathlib
import sys
import tempfile
import time

import h5py

import _floors
from _measure import measure_children

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                    os.environ.get("HELIXTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
SRC = DATA / "helixer_h5" / "upstream_0.3.6" / "spombe_chrI.geenuff2h5.rnaseq.h5"
EXE = pathlib.Path(sys.executable).parent / "n90_train_val_split.py"


def floors(tmp):
    """(wall s, CPU s) of h5py alone copying every per-row dataset into two files (3/4 and 1/4
    of the rows): as stored chunks (the floor), and inflated and compressed again."""
    out = {}
    for how in ("stored", "through_filters"):
        t, c = time.monotonic(), time.process_time()
        with h5py.File(SRC) as src, h5py.File(tmp / "a.h5", "w") as a, \
                h5py.File(tmp / "b.h5", "w") as b:
            n = len(src["data/seqids"])
            half = n * 3 // 4
            for k in _floors.per_row_datasets(src, n):
                d = src[k]
                for f, lo, hi in ((a, 0, half), (b, half, n)):
                    o = _floors.create_like(f, k, d, hi - lo)
                    if how == "stored":
                        _floors.copy_stored(d, o, lo, hi)
                    else:
                        _floors.copy_through_filters(d, o, lo, hi, 23)
        out[how] = (time.monotonic() - t, time.process_time() - c)
    return out, n


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        floor, n = floors(tmp)
        (floor_s, floor_cpu), (filtered_s, filtered_cpu) = floor["stored"], floor["through_filters"]
        runs = []
        for write_by in (500_000, 6_000_000, 24_000_000):
            wall, rss, cpu = measure_children([EXE, "--h5-to-split", SRC,
                                               "--output-pfx", f"{tmp}/",
                                               "--split-within-sequences", "--write-by", write_by,
                                               "--quiet"])
            runs.append({"write_by": write_by, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                         "rows_per_s": round(n / wall, 1), "peak_rss_mb": round(rss, 1),
                         "wall_ratio_to_floor": round(wall / floor_s, 2),
                         "cpu_ratio_to_floor": round(cpu / floor_cpu, 2)})
    print(json.dumps({"benchmark": "n90_train_val_split.py", "input": SRC.name, "rows": n,
                      "floor": "h5py: copy every per-row dataset into two files as stored "
                               "chunks",
                      "floor_s": round(floor_s, 2), "floor_cpu_s": round(floor_cpu, 2),
                      "through_filters_s": round(filtered_s, 2),
                      "through_filters_cpu_s": round(filtered_cpu, 2),
                      "runs": runs}))


if __name__ == "__main__":
    main()
