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
import gzip
import json
import os
import pathlib
import re
import shutil
import sys
import tempfile

from _measure import measure

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
SHARED = pathlib.Path(os.environ.get("HELIXTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
ATTR_ID = re.compile(r"((?:^|;)(?:ID|Parent)=)([^;]*)")


def make_input(data, copies, unsorted, tmp):
    """Write genome.fa and genes.gff3 into ``tmp``; returns (bp, genes)."""
    pombe = data / "schizosaccharomyces_pombe"
    with gzip.open(pombe / "sp_chrI.fa.gz", "rt") as fh:
        seq = "".join(line.strip() for line in fh if not line.startswith(">"))
    with open(tmp / "genome.fa", "w") as out:
        for c in range(1, copies + 1):
            out.write(f">chrI_c{c}\n")
            for i in range(0, len(seq), 80):
                out.write(seq[i:i + 80] + "\n")
    with gzip.open(pombe / "sp_chrI.genes.gff3.gz", "rt") as fh:
        lines = [ln.rstrip("\n").split("\t") for ln in fh if ln.strip() and not ln.startswith("#")]
    genes = sum(cols[2] == "gene" for cols in lines)

    def copy(cols, c):
        attrs = ATTR_ID.sub(lambda m: m.group(1) + ",".join(f"{v}_c{c}"
                                                            for v in m.group(2).split(",")),
                            cols[8])
        return "\t".join([f"chrI_c{c}", *cols[1:8], attrs]) + "\n"

    with open(tmp / "genes.gff3", "w") as out:
        out.write("##gff-version 3\n")
        if unsorted:
            for cols in lines:
                for c in range(1, copies + 1):
                    out.write(copy(cols, c))
        else:
            for c in range(1, copies + 1):
                out.writelines(copy(cols, c) for cols in lines)
    return copies * len(seq), copies * genes


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
        bp, genes = make_input(args.data, args.copies, args.unsorted, tmp)
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
