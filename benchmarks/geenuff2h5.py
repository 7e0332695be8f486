#!/usr/bin/env python3
"""Benchmark import2geenuff.py + geenuff2h5.py on S. pombe chromosome I (5.58 Mbp, 2,302 genes).

The floor is fasta2h5.py on the same genome, measured in the same run (geenuff2h5 writes the same
X plus the label datasets). Each tool runs as its own process; wall time, CPU time (user + system,
less sensitive to other load on a shared machine) and peak RSS come from os.wait4. Prints one
JSON line.

Usage: python benchmarks/geenuff2h5.py [--data ../shared/data] [--repeats 3]
"""
import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile

from _measure import measure

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent


def run(data, repeats):
    fasta = data / "schizosaccharomyces_pombe/sp_chrI.fa.gz"
    gff = data / "schizosaccharomyces_pombe/sp_chrI.genes.gff3.gz"
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench_geenuff_"))
    try:
        best = {}
        for _ in range(repeats):
            for name, argv in (
                ("fasta2h5", [BIN / "fasta2h5.py", "--fasta-path", fasta, "--species", "sp_chrI",
                              "--h5-output-path", tmp / "f.h5", "--quiet"]),
                ("import2geenuff", [BIN / "import2geenuff.py", "--gff3", gff, "--fasta", fasta,
                                    "--species", "sp_chrI", "--db-path", tmp / "sp.sqlite3",
                                    "--log-file", tmp / "sp.log", "--replace-db", "--quiet"]),
                ("geenuff2h5", [BIN / "geenuff2h5.py", "--input-db-path", tmp / "sp.sqlite3",
                                "--h5-output-path", tmp / "g.h5", "--quiet"]),
            ):
                for out in (tmp / "f.h5", tmp / "g.h5"):
                    if name != "import2geenuff" and out.exists():
                        out.unlink()
                wall, rss, cpu = measure([str(a) for a in argv])
                prev = best.get(name)
                best[name] = ((min(wall, prev[0]), max(rss, prev[1]), min(cpu, prev[2]))
                              if prev else (wall, rss, cpu))
    finally:
        shutil.rmtree(tmp)
    bp = 5_579_133
    f_wall, f_rss, f_cpu = best["fasta2h5"]
    i_wall, i_rss, i_cpu = best["import2geenuff"]
    g_wall, g_rss, g_cpu = best["geenuff2h5"]
    return {
        "benchmark": "import2geenuff+geenuff2h5", "genome": "S. pombe chr I", "bp": bp,
        "repeats": repeats, "cpu_count": os.cpu_count(),
        "import2geenuff_s": round(i_wall, 2), "import2geenuff_peak_rss_mb": round(i_rss),
        "geenuff2h5_s": round(g_wall, 2), "geenuff2h5_peak_rss_mb": round(g_rss),
        "geenuff2h5_mbp_per_s": round(bp / g_wall / 1e6, 2),
        "floor_fasta2h5_s": round(f_wall, 2), "floor_fasta2h5_peak_rss_mb": round(f_rss),
        "ratio_geenuff2h5_to_fasta2h5": round(g_wall / f_wall, 2),
        "cpu_s": {"import2geenuff": round(i_cpu, 2), "geenuff2h5": round(g_cpu, 2),
                  "fasta2h5": round(f_cpu, 2)},
        "cpu_ratio_geenuff2h5_to_fasta2h5": round(g_cpu / f_cpu, 2),
        "targets": {"ratio": 2.0, "import2geenuff_s": 5.0, "peak_rss_mb": 400},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("HELIXTUNE_SHARED_DATA",
                                                            ROOT.parent / "shared" / "data")))
    parser.add_argument("--repeats", type=int, default=3, help="best wall time of N runs")
    args = parser.parse_args()
    print(json.dumps(run(args.data, args.repeats)))


if __name__ == "__main__":
    main()
