#!/usr/bin/env python3
"""Benchmark import2geenuff.py at genome scale: S. pombe chr I repeated N times.

The input is generated on the fly into a temporary directory (never committed): a FASTA of
``--copies`` records (chrI_c1 .. chrI_cN, each the 5.58 Mb chromosome I) and a GFF3 with the
chr I annotation replicated once per copy (seqid and every ID/Parent suffixed with the copy, so
IDs stay unique; 2,302 genes per copy). ``--unsorted`` interleaves the copies' lines instead
of writing them sequence by sequence. The tool runs as its own process; wall time, CPU time
(user + system) and peak RSS come from os.wait4. Prints one JSON line.

Usage: python benchmarks/import2geenuff.py [--copies 40] [--unsorted] [--exe PATH]
       [--data ../shared/data] [--keep DIR]
"""
import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile

from _genome import write_genome
from _measure import measure

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
SHARED = pathlib.Path(os.environ.get("HELIXTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--unsorted", action="store_true",
                    help="interleave the copies' annotation lines")
    ap.add_argument("--exe", default=str(BIN / "import2geenuff.py"),
                    help="import2geenuff.py to run (e.g. another checkout's, for before/after)")
    ap.add_argument("--data", type=pathlib.Path, default=SHARED)
    ap.add_argument("--keep", type=pathlib.Path, help="work in (and keep) this directory")
    args = ap.parse_args()
    tmp = args.keep or pathlib.Path(tempfile.mkdtemp(prefix="bench_import2geenuff_"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        bp, genes = write_genome(args.data, args.copies, tmp / "genome.fa", tmp / "genes.gff3",
                                 args.unsorted)
        db = tmp / "out.sqlite3"
        if db.exists():
            db.unlink()
        wall, rss, cpu = measure([args.exe, "--gff3", tmp / "genes.gff3", "--fasta",
                                  tmp / "genome.fa", "--species", "Spombe", "--db-path", db,
                                  "--quiet"])
        print(json.dumps({"benchmark": "import2geenuff", "copies": args.copies,
                          "unsorted": args.unsorted, "bp": bp, "genes": genes,
                          "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                          "peak_rss_mb": round(rss), "db_bytes": db.stat().st_size}))
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
