#!/usr/bin/env python3
"""Benchmark compare_annotations.py on S. pombe chromosome I (5.58 Mbp, 2,302 genes).

Two runs, each its own process (wall time, CPU time and peak RSS from os.wait4):

* ``h5``: base level only; the upstream Helixer 0.3.6 labels (geenuff2h5 output) against a
  HybridModel-like predictions file made from them (float16 probabilities, 1 % of the bases
  flipped to another class; written once before timing, with coordinates from the labels file);
* ``gff3``: the reference GFF3 against a copy without every 10th gene: both labelled by the
  suite's import and export, plus the feature level and the splice-site check.

Prints one JSON line.

Usage: python benchmarks/compare_annotations.py [--data ../shared/data] [--repeats 1]
"""
import argparse
import gzip
import json
import os
import pathlib
import shutil
import sys
import tempfile

import h5py
import numpy as np

from _measure import measure

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
BP = 5_579_133


def make_predictions(labels, out):
    """Probabilities from the labels with 1 % of the bases given another class."""
    rng = np.random.default_rng(0)
    with h5py.File(labels, "r") as src, h5py.File(out, "w") as dst:
        y = src["data/y"]
        n, L, _ = y.shape
        pred = dst.create_dataset("predictions", (n, L, 4), np.float16, chunks=(1, L, 4),
                                  compression="gzip", shuffle=True)
        for a in range(0, n, 64):
            cls = np.argmax(y[a:a + 64], axis=-1)
            flip = rng.random(cls.shape) < 0.01
            cls[flip] = (cls[flip] + rng.integers(1, 4, flip.sum())) % 4
            probs = np.full(cls.shape + (4,), 0.05, np.float16)
            np.put_along_axis(probs, cls[..., None], 0.85, axis=-1)
            pred[a:a + len(cls)] = probs


def drop_every_10th_gene(gff, out):
    """A copy of the GFF3 without every 10th gene (and its descendants)."""
    lines = gzip.open(gff, "rt").read().splitlines()
    parent_of, roots = {}, []
    features = []
    for ln in lines:
        cols = ln.split("\t")
        attrs = dict(kv.split("=", 1) for kv in cols[8].split(";") if "=" in kv) \
            if len(cols) == 9 else {}
        features.append(attrs)
        if "ID" in attrs:
            parent_of[attrs["ID"]] = attrs.get("Parent")
            if cols[2] == "gene":
                roots.append(attrs["ID"])
    dropped = set(roots[::10])

    def root(ident):
        while parent_of.get(ident):
            ident = parent_of[ident]
        return ident

    kept = [ln for ln, attrs in zip(lines, features)
            if root(attrs.get("ID") or attrs.get("Parent", "")) not in dropped]
    pathlib.Path(out).write_text("\n".join(kept) + "\n")


def run(data, repeats):
    labels = data / "helixer_h5/upstream_0.3.6/spombe_chrI.geenuff2h5.rnaseq.h5"
    fasta = data / "schizosaccharomyces_pombe/sp_chrI.fa.gz"
    gff = data / "schizosaccharomyces_pombe/sp_chrI.genes.gff3.gz"
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench_compare_"))
    try:
        make_predictions(labels, tmp / "pred.h5")
        drop_every_10th_gene(gff, tmp / "pred.gff3")
        runs = {
            "h5": ["--reference", labels, "--predictions", tmp / "pred.h5",
                   "--prediction-data", labels],
            "gff3": ["--reference", gff, "--predictions", tmp / "pred.gff3", "--fasta", fasta],
        }
        best = {}
        for _ in range(repeats):
            for name, argv in runs.items():
                out = tmp / f"out_{name}"
                wall, rss, cpu = measure([BIN / "compare_annotations.py", *argv,
                                          "--output-dir", out, "--quiet"])
                prev = best.get(name)
                best[name] = ((min(wall, prev[0]), max(rss, prev[1]), min(cpu, prev[2]))
                              if prev else (wall, rss, cpu))
        f1 = {name: json.loads((tmp / f"out_{name}" / "report.json").read_text())[
            "predictions"][0]["genic_f1"] for name in runs}
    finally:
        shutil.rmtree(tmp)
    out = {"benchmark": "compare_annotations", "genome": "S. pombe chr I", "bp": BP,
           "repeats": repeats, "cpu_count": os.cpu_count()}
    for name, (wall, rss, cpu) in best.items():
        out[name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "peak_rss_mb": round(rss), "mbp_per_s": round(BP / wall / 1e6, 2),
                     "genic_f1": round(f1[name], 4)}
    out["targets"] = {"200_mbp_minutes": 10, "peak_rss_mb": 1024}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("HELIXTUNE_SHARED_DATA",
                                                            ROOT.parent / "shared" / "data")))
    parser.add_argument("--repeats", type=int, default=1, help="best wall time of N runs")
    args = parser.parse_args()
    print(json.dumps(run(args.data, args.repeats)))


if __name__ == "__main__":
    main()
