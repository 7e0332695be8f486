#!/usr/bin/env python3
"""Every data tool of the suite at genome scale: ~10 Mb, ~100 Mb and ~1 Gb genomes.

Each genome is S. pombe chromosome I (5.58 Mb) repeated as its own FASTA records (chrI_c1 ..
chrI_cN, the GFF3 annotation replicated with copy-suffixed IDs; see ``_genome.py``); a size below
one chromosome takes its first bases (the genes wholly inside). Inputs are generated on the fly in
a temporary directory, one size at a time, and removed before the next size:

* BAMs: the five HISAT2 RNA-seq BAMs of chr I, every read re-targeted to every copy (written
  with pysam, coordinate-sorted, BGZF level 1, indexed), so coverage grows with the genome;
* predictions for helixer_post_bin and filter-to-most-certain.py: synthesised from the reference
  labels (data/y, data/phases of geenuff2h5.py's output) as noisy softmax outputs (seed 7, as
  ``benchmarks/helixer_post.py``) for the first copy, the compressed rows copied for the others;
* HybridModel.py prediction: a small model (1 CNN, 1 BiLSTM x 32, Helixer's defaults) with random
  weights (seed 1), on the CPU, batches of 8.

The tools run in this order, each as its own process with its defaults (tools left out by
``--tools`` still run when a later tool needs their output, but are not reported):
fasta2h5.py, import2geenuff.py, geenuff2h5.py, add_ngs_coverage.py (the five BAMs,
--second-read-is-sense-strand), filter-to-most-certain.py (the coverage file),
n90_train_val_split.py (the coverage file, whole sequences; --split-within-sequences for one
sequence), helixer_post_bin (100 0.1 0.8 60), HybridModel.py (fasta2h5.py's file).
Wall time, CPU time (user + system) and peak RSS (the largest single process among the tool and
its descendants) come from getrusage(RUSAGE_CHILDREN) of a small wrapper process (``_measure``).
helixer_post_bin's numba cache is filled first on a small generated case, so its figures leave
out the one-off JIT compilation. Prints a JSON line per tool and size on stdout,
then a summary table on stderr: time per Mb relative to the smallest size (target <= 1.3x) and
peak RSS (target <= 1 GB at 1 Gb).

Usage: python benchmarks/scale.py [--sizes 10,100,1000] [--max-size MB] [--tools a,b]
                                  [--keep DIR] [--plot PNG] [--data ../shared/data] [--unit-bp N]
       python benchmarks/scale.py --results ROWS.jsonl [...] [--plot PNG]
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

from _genome import copy_names, write_bams, write_genome
from _measure import measure_children

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
SHARED = pathlib.Path(os.environ.get("HELIXTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CHR1_BP = 5_579_133
TOOLS = ["fasta2h5.py", "import2geenuff.py", "geenuff2h5.py", "add_ngs_coverage.py",
         "filter-to-most-certain.py", "n90_train_val_split.py", "helixer_post_bin",
         "HybridModel.py"]
NEEDS = {"geenuff2h5.py": ["import2geenuff.py"],
         "add_ngs_coverage.py": ["geenuff2h5.py"],
         "filter-to-most-certain.py": ["add_ngs_coverage.py"],
         "n90_train_val_split.py": ["add_ngs_coverage.py"],
         "helixer_post_bin": ["geenuff2h5.py"],
         "HybridModel.py": ["fasta2h5.py"]}
SMALL_MODEL = dict(cnn_layers=1, lstm_layers=1, units=32, filter_depth=32, kernel_size=26,
                   pool_size=9, predict_phase=True)
ENV_CPU = dict(os.environ, CUDA_VISIBLE_DEVICES="")   # HybridModel.py on the CPU
MAKE_MODEL = ("import sys; from helixtune import network; tf, K = network.setup_tensorflow(); "
              "K.utils.set_random_seed(1); network.save_model(network.build_model(**{arch}), "
              "sys.argv[1], include_optimizer=False)")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def with_prerequisites(tools):
    """The tools to run (in suite order): those asked for and every tool they need."""
    need = set(tools)
    for tool in reversed(TOOLS):
        if tool in need:
            need.update(NEEDS.get(tool, []))
    return [t for t in TOOLS if t in need]


def genome_plan(size_mb, unit_bp=CHR1_BP):
    """(copies, bases per copy) of the genome closest to ``size_mb`` megabases made of copies
    of the first ``unit_bp`` bases of chr I (one shorter copy below that)."""
    bp = round(size_mb * 1e6)
    if bp < unit_bp:
        return 1, bp
    return max(1, round(bp / unit_bp)), unit_bp


def postcases():
    sys.path.insert(0, str(ROOT / "tests" / "tools"))
    import postcases   # the generator of the helixer_post benchmark and tests
    return postcases


def warm_numba_cache(work):
    """Run helixer_post_bin once on a small generated case (fills its numba cache)."""
    genome, preds = work / "warm_genome.h5", work / "warm_predictions.h5"
    p = postcases().make_case(1, genome, preds)
    measure_children([BIN / "helixer_post_bin", genome, preds, p["window"], p["edge"], p["peak"],
                      p["min_length"], work / "warm.gff3", "--quiet"])
    for path in (genome, preds, work / "warm.gff3"):
        path.unlink()


def synthesise_predictions(labels, out, copies):
    """Predictions for every row of ``labels`` (geenuff2h5.py output): the first copy's rows
    from its labels, the same compressed chunks for the other copies (identical rows)."""
    with h5py.File(labels) as g:
        seqids = g["data/seqids"][:]
        se = g["data/start_ends"][:]
    per_copy = len(seqids) // copies
    first = np.flatnonzero(seqids == copy_names(copies)[0].encode())
    assert np.array_equal(first, np.arange(per_copy)), "rows of a copy are not contiguous"
    for c, name in enumerate(copy_names(copies)):
        rows = slice(c * per_copy, (c + 1) * per_copy)
        assert (seqids[rows] == name.encode()).all()
        assert np.array_equal(se[rows], se[:per_copy])
    one = out.with_name("predictions_copy1.h5")
    postcases().synthesise_predictions(labels, one, rows=first)
    with h5py.File(one) as src, h5py.File(out, "w") as dst:
        for name in ("predictions", "predictions_phase"):
            s = src[name]
            d = dst.create_dataset(name, (len(seqids),) + s.shape[1:], s.dtype, chunks=s.chunks,
                                   compression="gzip", shuffle=True)
            for r in range(per_copy):
                mask, chunk = s.id.read_direct_chunk((r, 0, 0))
                for c in range(copies):
                    d.id.write_direct_chunk((c * per_copy + r, 0, 0), chunk, mask)
        for k, v in src.attrs.items():
            dst.attrs[k] = v
    one.unlink()


def run_size(size_mb, tools, args, work):
    """Generate the inputs of one size in ``work``, run ``tools``; returns the result rows."""
    copies, length = genome_plan(size_mb, args.unit_bp)
    t0 = time.monotonic()
    bp, genes = write_genome(args.data, copies, work / "genome.fa", work / "genes.gff3",
                             length=length)
    log(f"{size_mb} Mb: {copies} x {length:,} bp, {genes:,} genes written "
        f"({time.monotonic() - t0:.0f} s)")
    f = {name: work / name for name in ("genome.fa", "genes.gff3", "genome.h5", "db.sqlite3",
                                        "data.h5", "predictions.h5", "filtered.h5",
                                        "post.gff3", "model.h5", "model_predictions.h5")}
    extra = {}

    def cmd_for(tool):
        if tool == "fasta2h5.py":
            return ["--fasta-path", f["genome.fa"], "--h5-output-path", f["genome.h5"],
                    "--species", "Spombe"]
        if tool == "import2geenuff.py":
            return ["--gff3", f["genes.gff3"], "--fasta", f["genome.fa"], "--species", "Spombe",
                    "--db-path", f["db.sqlite3"]]
        if tool == "geenuff2h5.py":
            return ["--input-db-path", f["db.sqlite3"], "--h5-output-path", f["data.h5"]]
        if tool == "add_ngs_coverage.py":
            t = time.monotonic()
            bams, records = write_bams(args.data, copies, length, work)
            extra["bam_records"] = records
            log(f"  {len(bams)} BAMs, {records:,} records written ({time.monotonic() - t:.0f} s)")
            return ["-s", "Spombe", "-d", f["data.h5"], "--dataset-prefix", "rnaseq",
                    "--second-read-is-sense-strand", "-b", *bams]
        if tool == "filter-to-most-certain.py":
            return ["--h5-to-filter", f["data.h5"], "--predictions", f["predictions.h5"],
                    "--test-data", f["data.h5"], "--output-file", f["filtered.h5"]]
        if tool == "n90_train_val_split.py":
            split = ["--split-within-sequences"] if copies == 1 else []
            return ["-i", f["data.h5"], "-o", f"{work}/", *split]
        if tool == "helixer_post_bin":
            return [f["data.h5"], f["predictions.h5"], "100", "0.1", "0.8", "60", f["post.gff3"]]
        if tool == "HybridModel.py":
            t = time.monotonic()
            subprocess.run([sys.executable, "-c", MAKE_MODEL.format(arch=SMALL_MODEL),
                            f["model.h5"]], check=True, capture_output=True, env=ENV_CPU)
            log(f"  random-weight small model saved ({time.monotonic() - t:.0f} s)")
            return ["-l", f["model.h5"], "-t", f["genome.h5"], "-p", f["model_predictions.h5"],
                    "--val-test-batch-size", "8"]
        raise AssertionError(tool)

    def cleanup(done):
        """Remove the files no tool after ``done`` needs (the largest size must fit on disk)."""
        later = set(tools[tools.index(done) + 1:])
        drop = []
        if not later & {"import2geenuff.py", "fasta2h5.py"}:
            drop += ["genome.fa", "genes.gff3"]
        if not later & {"geenuff2h5.py"}:
            drop += ["db.sqlite3"]
        if not later & {"filter-to-most-certain.py", "helixer_post_bin"}:
            drop += ["predictions.h5"]
        drop += ["filtered.h5", "filtered.report.json", "post.gff3", "model_predictions.h5",
                 "training_data.h5", "validation_data.h5", "train_val_assignment.tsv"]
        if done == "add_ngs_coverage.py":
            drop += [p.name for p in work.glob("*.bam*")]
        for name in drop:
            (work / name).unlink(missing_ok=True)

    rows = []
    for tool in tools:
        if tool in ("filter-to-most-certain.py", "helixer_post_bin") \
                and not f["predictions.h5"].exists():
            t = time.monotonic()
            synthesise_predictions(f["data.h5"], f["predictions.h5"], copies)
            log(f"  predictions synthesised ({time.monotonic() - t:.0f} s)")
        cmd = [BIN / tool, *cmd_for(tool), "--quiet"]
        load = os.getloadavg()[0]
        wall, rss, cpu = measure_children(cmd, ENV_CPU)
        disk = shutil.disk_usage(work)
        work_bytes = sum(p.stat().st_size for p in work.iterdir() if p.is_file())
        row = {"benchmark": "scale", "tool": tool, "size_mb": size_mb, "copies": copies,
               "bp": bp, "genes": genes, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
               "peak_rss_mb": round(rss), "wall_s_per_mb": round(wall / bp * 1e6, 4),
               "cpu_s_per_mb": round(cpu / bp * 1e6, 4), "work_dir_bytes": work_bytes,
               "disk_free_gb": round(disk.free / 1e9, 1), "load_average_1min": round(load, 1)}
        if tool == "add_ngs_coverage.py":
            row["bam_records"] = extra["bam_records"]
        log(f"  {tool}: {wall:.1f} s wall, {cpu:.1f} s CPU, {rss:.0f} MiB")
        if tool in args.tools:
            print(json.dumps(row), flush=True)
            rows.append(row)
        if not args.keep:
            cleanup(tool)
    return rows


def summary(rows):
    """Markdown table: per tool and size, wall and CPU s/Mb relative to the smallest size."""
    lines = ["| tool | genome Mb | wall s | CPU s | wall s/Mb | CPU s/Mb | wall/Mb ratio | "
             "CPU/Mb ratio | peak RSS MiB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for tool in TOOLS:
        mine = [r for r in rows if r["tool"] == tool]
        if not mine:
            continue
        base = min(mine, key=lambda r: r["bp"])
        for r in sorted(mine, key=lambda r: r["bp"]):
            lines.append(
                f"| {tool} | {r['bp'] / 1e6:.1f} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                f"{r['wall_s_per_mb']:.3f} | {r['cpu_s_per_mb']:.3f} | "
                f"{r['wall_s_per_mb'] / base['wall_s_per_mb']:.2f} | "
                f"{r['cpu_s_per_mb'] / base['cpu_s_per_mb']:.2f} | {r['peak_rss_mb']} |")
    return "\n".join(lines)


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: .venv/bin/python -m pip install matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    return plt, matplotlib.ticker


def plot(rows, path):
    """Two panels against genome size: CPU s per Mb and peak RSS, one line per tool."""
    plt, ticker = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for tool in TOOLS:
        mine = sorted((r for r in rows if r["tool"] == tool), key=lambda r: r["bp"])
        if mine:
            x = [r["bp"] / 1e6 for r in mine]
            ax1.plot(x, [r["cpu_s_per_mb"] for r in mine], "o-", label=tool)
            ax2.plot(x, [r["peak_rss_mb"] for r in mine], "o-", label=tool)
    for ax, ylabel in ((ax1, "CPU s per Mb (user + sys)"), (ax2, "peak RSS (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("genome size (Mb)")
        ax.set_ylabel(ylabel)
        ax.set_xticks(sorted({r["bp"] / 1e6 for r in rows}))
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.4g}"))
            axis.set_minor_formatter(ticker.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    ax2.axhline(1000, color="grey", linestyle="--", linewidth=1)
    fig.legend(*ax1.get_legend_handles_labels(), loc="center right", fontsize=8)
    fig.suptitle("helixtune tools at genome scale (S. pombe chr I replicated)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.8, 1))
    fig.savefig(path, dpi=80)


def parse_list(text, kind):
    return [kind(v) for v in text.split(",") if v]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000",
                    help="genome sizes in Mb, comma-separated (default: %(default)s)")
    ap.add_argument("--max-size", type=float, default=None,
                    help="leave out the sizes above this many Mb")
    ap.add_argument("--tools", default=",".join(TOOLS),
                    help="tools to report, comma-separated (default: all)")
    ap.add_argument("--unit-bp", type=int, default=CHR1_BP,
                    help="bases of chr I per copy (smaller: more, shorter sequences; for tests)")
    ap.add_argument("--data", type=pathlib.Path, default=SHARED, help="shared data directory")
    ap.add_argument("--keep", type=pathlib.Path,
                    help="work in (and keep) this directory, one subdirectory per size")
    ap.add_argument("--plot", type=pathlib.Path, help="write a PNG plot here (needs matplotlib)")
    ap.add_argument("--results", type=pathlib.Path, nargs="+",
                    help="run nothing: summarise (and --plot) the JSON lines of earlier runs")
    args = ap.parse_args()
    if args.results:
        rows = [json.loads(line) for path in args.results for line in open(path) if line.strip()]
        print(summary(rows), file=sys.stderr)
        if args.plot:
            plot(rows, args.plot)
        return 0
    sizes = [s for s in parse_list(args.sizes, float) if args.max_size is None
             or s <= args.max_size]
    sizes = [int(s) if s == int(s) else s for s in sizes]
    args.tools = parse_list(args.tools, str)
    unknown = set(args.tools) - set(TOOLS)
    if unknown or not sizes:
        ap.error(f"unknown tools {sorted(unknown)} (known: {', '.join(TOOLS)})" if unknown
                 else "no size left")
    if args.plot:
        pyplot()   # fail early without matplotlib
    tools = with_prerequisites(args.tools)
    base = args.keep or pathlib.Path(tempfile.mkdtemp(prefix="bench_scale_"))
    base.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        if "helixer_post_bin" in tools:
            warm_numba_cache(base)
        for size in sizes:
            work = base / f"{size}Mb"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            log(f"{size} Mb in {work}; {shutil.disk_usage(work).free / 1e9:.0f} GB free")
            rows += run_size(size, tools, args, work)
            if not args.keep:
                shutil.rmtree(work)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(summary(rows), file=sys.stderr)
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
