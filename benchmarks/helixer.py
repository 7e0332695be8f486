#!/usr/bin/env python3
"""Benchmark: Helixer.py against the three steps by hand (fasta2h5.py -> HybridModel.py --overlap
-> helixer_post_bin) on S. pombe chr I (or its first --bp bases; --copies N: a genome of N
copies of it, each its own sequence), with the bundled default model (or --model).

Per run: wall time, peak RSS (os.wait4) and the peak disk use of the intermediate files (the
temporary directory's size sampled every 0.1 s; for the steps, the genome and predictions
files they leave). The two GFF3 files must be identical. Prints one JSON line.
Target: wall <= the sum of the steps; temporary disk <= 1/4 of the steps' intermediate files;
with --copies and --write-by of one copy, Helixer.py's peak temporary disk and RSS stay those
of one copy (bounded by the largest sequence, not the genome).
Usage: benchmarks/helixer.py [--bp N] [--copies N] [--write-by N] [--model M] [--threads T]
       [--post-threads T]  (helixer_post_bin's threads in the steps; 1 = HelixerPost's command line)
"""
import argparse
import gzip
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading

import _measure

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("HELIXTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
L = 21384
POST = ["100", "0.1", "0.8", "100"]  # Helixer.py's defaults: window, edge, peak, min coding length


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:  # removed meanwhile
                pass
    return total


class PeakSize(threading.Thread):
    """Samples the size of a directory tree until stopped; ``peak`` in bytes."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.peak, self.done = path, 0, threading.Event()

    def run(self):
        while not self.done.wait(0.1):
            self.peak = max(self.peak, dir_size(self.path))

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


def write_input(path, bp, copies):
    """The chromosome (or its first ``bp`` bases), ``copies`` times as sequences chrI_1, ...,
    as plain FASTA; returns the total length."""
    with gzip.open(DATA / "schizosaccharomyces_pombe" / "sp_chrI.fa.gz", "rt") as f:
        f.readline()
        seq = "".join(line.strip() for line in f)
    seq = seq[:bp] if bp else seq
    with open(path, "w") as out:
        for i in range(1, copies + 1):
            out.write(f">chrI_{i}\n{seq}\n")
    return len(seq) * copies


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bp", type=int, default=0, help="use only the first N bases (0: all)")
    ap.add_argument("--copies", type=int, default=1, help="genome of N copies (sequences)")
    ap.add_argument("--write-by", type=int, default=None,
                    help="Helixer.py --write-by (default: its own, 20,000,000)")
    ap.add_argument("--model", type=pathlib.Path, default=None,
                    help="model file (default: the bundled default model)")
    ap.add_argument("--post", nargs=4, metavar=("WINDOW", "EDGE", "PEAK", "MIN_CODING"),
                    default=POST, help="post-processing parameters (default: Helixer.py's, "
                                       + " ".join(POST) + ")")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--post-threads", type=int, default=None,
                    help="helixer_post_bin --threads of the steps (default: --threads; 1 = "
                         "HelixerPost's documented command line, single-threaded)")
    args = ap.parse_args()
    post_threads = args.post_threads or args.threads
    sys.path.insert(0, str(ROOT / "lib"))
    from helixtune import models
    model = args.model or models.resolve_lineage_model("default")
    bin_dir = pathlib.Path(sys.executable).parent
    env = dict(os.environ, HELIXTUNE_THREADS=str(args.threads),
               HELIXTUNE_TF_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
        tmp = pathlib.Path(tmp)
        fasta = tmp / "genome.fa"
        n_bp = write_input(fasta, args.bp, args.copies)
        steps_dir = tmp / "steps"
        steps_dir.mkdir()
        genome, preds, steps_gff = (steps_dir / "genome.h5", steps_dir / "preds.h5",
                                    steps_dir / "steps.gff3")
        steps = {
            "fasta2h5": [bin_dir / "fasta2h5.py", "--fasta-path", fasta, "--species", "sp",
                         "--subsequence-length", L, "--h5-output-path", genome, "--quiet"],
            "HybridModel": [bin_dir / "HybridModel.py", "--load-model-path", model,
                            "--test-data", genome, "--prediction-output-path", preds,
                            "--overlap", "--quiet"],
            "helixer_post": [bin_dir / "helixer_post_bin", genome, preds, *args.post, steps_gff,
                             "--threads", post_threads, "--quiet"],
        }
        result = {"input_bp": n_bp, "copies": args.copies, "model": str(model),
                  "post": args.post,
                  "threads": args.threads, "post_threads": post_threads, "write_by": args.write_by, "steps": {}}
        for name, cmd in steps.items():
            wall, rss, cpu = _measure.measure(cmd, env)
            result["steps"][name] = {"wall_s": round(wall, 1), "peak_rss_mb": round(rss),
                                     "cpu_s": round(cpu, 1)}
        result["steps_wall_s"] = round(sum(s["wall_s"] for s in result["steps"].values()), 1)
        result["steps_peak_rss_mb"] = max(s["peak_rss_mb"] for s in result["steps"].values())
        result["steps_intermediate_mb"] = round(
            (genome.stat().st_size + preds.stat().st_size) / 2**20, 2)
        result["genome_h5_mb"] = round(genome.stat().st_size / 2**20, 2)
        result["predictions_h5_mb"] = round(preds.stat().st_size / 2**20, 2)

        one_dir, temporary = tmp / "one", tmp / "temporary"
        one_dir.mkdir()
        temporary.mkdir()
        one_gff = one_dir / "one.gff3"
        sampler = PeakSize(temporary)
        sampler.start()
        wall, rss, cpu = _measure.measure(
            [bin_dir / "Helixer.py", "--fasta-path", fasta, "--species", "sp",
             "--model-filepath", model, "--subsequence-length", L, "--gff-output-path", one_gff,
             "--temporary-dir", temporary, "--threads", args.threads, "--quiet",
             *(f"--{name}={value}" for name, value in zip(
                 ("window-size", "edge-threshold", "peak-threshold", "min-coding-length"),
                 args.post)),
             *(["--write-by", args.write_by] if args.write_by else [])],
            {k: v for k, v in env.items() if k != "HELIXTUNE_TF_THREADS"})  # its own split
        peak = sampler.stop()
        result["helixer"] = {"wall_s": round(wall, 1), "peak_rss_mb": round(rss),
                             "cpu_s": round(cpu, 1),
                             "peak_temporary_mb": round(peak / 2**20, 2)}
        result["identical_gff3"] = one_gff.read_bytes() == steps_gff.read_bytes()
        if shutil.which("gt"):  # Debian's genometools
            check = subprocess.run(["gt", "gff3validator", one_gff], capture_output=True,
                                   text=True)
            result["gff3validator"] = "ok" if check.returncode == 0 else check.stderr.strip()
        result["genes"] = one_gff.read_text().count("\tgene\t")
        result["wall_ratio"] = round(wall / result["steps_wall_s"], 3)
        result["temporary_disk_ratio"] = round(peak / 2**20 / result["steps_intermediate_mb"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
