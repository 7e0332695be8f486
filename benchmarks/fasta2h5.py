#!/usr/bin/env python3
"""Benchmark fasta2h5.py against its floor; prints one JSON line.

    python benchmarks/fasta2h5.py [--fasta FILE] [--species NAME] [--repeat N]

The tool runs in a subprocess (wall time, peak RSS from os.wait4), with its default chunk
compression threads and with HELIXTUNE_THREADS=1. The floor, measured in the
same run: a separate process that reads the arrays back from the file the tool wrote and times
only h5py writing them with the same dtype, chunks, compression and shuffle. Targets: ratio
≤ 1.3 and peak RSS ≤ 400 MB. With --repeat N the fastest of N runs of each is reported.
"""
import argparse
import json
import os
import pathlib
import sys
import tempfile

from helixtune import h5layout

from _measure import measure_output

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("HELIXTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
NAMES = ("X", "seqids", "species", "start_ends")

FLOOR = r"""
import json, sys, time
import h5py
src, dst = sys.argv[1], sys.argv[2]
with h5py.File(src, "r") as h5:
    arrays = {n: h5["data"][n][:] for n in %r}
    storage = {n: dict(chunks=h5["data"][n].chunks, compression=h5["data"][n].compression,
                       compression_opts=h5["data"][n].compression_opts, shuffle=h5["data"][n].shuffle,
                       maxshape=h5["data"][n].maxshape) for n in arrays}
t0, c0 = time.perf_counter(), time.process_time()
with h5py.File(dst, "w") as h5:
    group = h5.create_group("data")
    for n, a in arrays.items():
        group.create_dataset(n, data=a, **storage[n])
print(json.dumps({"write_s": time.perf_counter() - t0, "write_cpu_s": time.process_time() - c0}))
""" % (NAMES,)


def genome_bp(h5_path):
    import h5py
    with h5py.File(h5_path, "r") as h5:
        se = h5["data/start_ends"][:]
    plus = se[:, 1] > se[:, 0]
    return int((se[plus, 1] - se[plus, 0]).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fasta", default=str(SHARED / "schizosaccharomyces_pombe" / "sp_chrI.fa.gz"))
    parser.add_argument("--species", default="sp_chrI")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    exe = os.path.join(os.path.dirname(sys.executable), "fasta2h5.py")
    with tempfile.TemporaryDirectory(prefix="bench_fasta2h5.") as tmp:
        out, floor_out = os.path.join(tmp, "tool.h5"), os.path.join(tmp, "floor.h5")
        tool_runs, one_thread_runs, floor_runs = [], [], []
        cmd = [exe, "--fasta-path", args.fasta, "--species", args.species, "--h5-output-path", out, "--quiet"]
        for _ in range(args.repeat):
            one_thread_runs.append(measure_output(cmd, env=dict(os.environ, HELIXTUNE_THREADS="1")))
            tool_runs.append(measure_output(cmd))
            wall, rss, _, stdout = measure_output([sys.executable, "-c", FLOOR, out, floor_out])
            floor = json.loads(stdout)
            floor_runs.append((floor["write_s"], rss, floor["write_cpu_s"]))
        wall = min(r[0] for r in tool_runs)
        rss = max(r[1] for r in tool_runs)
        floor_s = min(r[0] for r in floor_runs)
        bp = genome_bp(out)
        size_mb = os.path.getsize(out) / 1e6
    result = {
        "benchmark": "fasta2h5", "input": os.path.relpath(args.fasta, SHARED) if args.fasta.startswith(str(SHARED))
        else args.fasta, "species": args.species, "genome_bp": bp, "output_mb": round(size_mb, 1),
        "wall_s": round(wall, 3), "bp_per_s": round(bp / wall), "peak_rss_mb": round(rss, 1),
        "floor_h5py_write_s": round(floor_s, 3), "ratio": round(wall / floor_s, 3),
        "floor_peak_rss_mb": round(max(r[1] for r in floor_runs), 1), "repeat": args.repeat,
        "cpu_s_1_thread": round(min(r[2] for r in one_thread_runs), 3),
        "floor_cpu_s": round(min(r[2] for r in floor_runs), 3),
        "cpu_ratio_1_thread": round(min(r[2] for r in one_thread_runs) / min(r[2] for r in floor_runs), 3),
        "load_average_1min": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
        "threads": h5layout.compression_threads(),
        "wall_s_1_thread": round(min(r[0] for r in one_thread_runs), 3),
        "ratio_1_thread": round(min(r[0] for r in one_thread_runs) / floor_s, 3),
        "peak_rss_mb_1_thread": round(max(r[1] for r in one_thread_runs), 1),
        "target": {"ratio_max": 1.3, "peak_rss_mb_max": 400},
    }
    result["meets_target"] = result["ratio"] <= 1.3 and result["peak_rss_mb"] <= 400
    print(json.dumps(result))


if __name__ == "__main__":
    main()
