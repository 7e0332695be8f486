#!/usr/bin/env python3
"""Reproduce helixtune's bundled starting model (lineage ``default``) from ../shared/data.

Every step is one of the suite's executables, run as a user would (the commands are printed):
per species import2geenuff.py -> geenuff2h5.py -> n90_train_val_split.py (validation = held-out
blocks of each species), then HybridModel.py training on all species at once, then
HybridModel.py --eval of the model on each species' validation blocks (the training summary).

S. pombe chr I:1-HOLDOUT_END is never used: it is the README's fine-tuning example
(``example/``), so the model has not seen the example's genome. ``--exclude SPECIES`` leaves a
species out (the leave-one-species-out starting models of benchmarks/finetune_experiment/).

    python benchmarks/default_model/recipe.py --work /tmp/default_model [--exclude spombe]

Writes WORK/default.h5 and WORK/summary.json; with ``--install`` the model is copied to
lib/helixtune/data/models/default.h5 (with its provenance attribute).
"""
import argparse
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("HELIXTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT / "lib"))

#: species name -> (FASTA, GFF3) under ../shared/data
SPECIES = {
    "athaliana": ("arabidopsis_thaliana/at_tair10_1pct.shared.fa.gz",
                  "arabidopsis_thaliana/at_tair10_1pct.shared.genes.gff3.gz"),
    "spombe": ("schizosaccharomyces_pombe/sp_chrI.fa.gz",
               "schizosaccharomyces_pombe/sp_chrI.genes.gff3.gz"),
    "mpusilla": ("micromonas_pusilla/mini_test_data.fa.gz",
                 "micromonas_pusilla/mini_test_data.gff3.gz"),
    "celegans": ("extra_invertebrates/snap_ce_1pct.fa.gz",
                 "extra_invertebrates/snap_ce_1pct.gff3.gz"),
    "dmelanogaster": ("extra_invertebrates/snap_dm_1pct.fa.gz",
                      "extra_invertebrates/snap_dm_1pct.gff3.gz"),
}
HOLDOUT = ("spombe", 120_000)  # S. pombe chr I rows starting before this are the example's
L = 21384  # the rows the model predicts (Helixer.py's default for lineage default) and is scored on
#: the rows it trains on: L / 9. The network is length-agnostic; on a CPU the BiLSTM's cost per
#: step is its L / pool sequential steps, so 9x shorter rows in 4x larger batches give ~5x
#: the bases per second and 2x the updates per base (README.md here)
TRAIN_L = L // 9
#: the architecture and training settings (chosen by the measurements in README.md here)
ARCH = ["--cnn-layers", "2", "--filter-depth", "32", "--kernel-size", "9", "--lstm-layers", "1",
        "--units", "32", "--pool-size", "9"]
TRAINING = ["--batch-size", "32", "--predict-phase", "--class-weights", "[1.0, 1.5, 0.6, 2.0]",
            "--check-every-nth-batch", "65", "--patience", "20"]
#: (learning rate, epochs) of the two stages: from scratch, then the best model refined at a
#: lower rate (at 1e-3 the validation genic F1 swings by several points between checks)
STAGES = (("1e-3", 20), ("3e-4", 5))


def run(cmd, log):
    """Run one of the suite's commands, printing it first (so it can be copied)."""
    line = shlex.join(str(c) for c in cmd)
    print(f"$ {line}", flush=True)
    log.write(f"$ {line}\n")
    log.flush()
    subprocess.run([str(c) for c in cmd], check=True, stdout=log, stderr=log)


def drop_holdout(path, end):
    """Remove the rows of ``path`` whose region starts before ``end`` (both strands)."""
    from helixtune import h5rows
    tmp = path.with_suffix(".part.h5")
    with h5py.File(path, "r") as src:
        se = src["data/start_ends"][:]
        keep = np.minimum(se[:, 0], se[:, 1]) >= end
        n = len(keep)
        with h5py.File(tmp, "w") as dst:
            names = h5rows.copy_structure(src, [dst], [int(keep.sum())], n)
            h5rows.copy_rows(src, [dst], [keep], names, 64)
    os.replace(tmp, path)
    return int((~keep).sum())


def split_like(path, assignment, outputs):
    """Split ``path`` (rows of TRAIN_L) into ``outputs`` (training, validation) by the blocks of
    ``assignment`` (n90_train_val_split.py's train_val_assignment.tsv of the L rows): a row goes
    where the block holding its start went; rows outside every block (the holdout) are dropped."""
    from helixtune import h5rows
    blocks = {}
    with open(assignment) as f:
        next(f)
        for line in f:
            _, seqid, start, end, role = line.split("\t")[:5]
            blocks.setdefault(seqid, []).append((int(start), int(end), role == "validation"))
    with h5py.File(path, "r") as src:
        seqids = [s.decode() for s in src["data/seqids"][:]]
        lo = src["data/start_ends"][:].min(axis=1)
        masks = [np.zeros(len(lo), bool), np.zeros(len(lo), bool)]
        for i, (seqid, start) in enumerate(zip(seqids, lo)):
            for a, b, is_val in blocks.get(seqid, ()):
                if a <= start < b:
                    masks[int(is_val)][i] = True
                    break
        tmps = [out.with_suffix(".part.h5") for out in outputs]
        dsts = [h5py.File(t, "w") for t in tmps]
        try:
            names = h5rows.copy_structure(src, dsts, [int(m.sum()) for m in masks], len(lo))
            h5rows.copy_rows(src, dsts, masks, names, 256)
        finally:
            for dst in dsts:
                dst.close()
    for tmp, out in zip(tmps, outputs):
        os.replace(tmp, out)


def prepare(work, species, log, seed):
    """Per species: the validation file of L rows (WORK/eval/, the training summary's) and the
    training and validation files of TRAIN_L rows of the same blocks (WORK/data/)."""
    data, scoring = work / "data", work / "eval"
    done = [data / f"{role}_data.{species}.h5" for role in ("training", "validation")]
    if all(p.exists() for p in done) and (scoring / f"validation_data.{species}.h5").exists():
        return  # prepared by an earlier run with the same --work
    fasta, gff3 = (SHARED / p for p in SPECIES[species])
    d = work / species
    d.mkdir(parents=True, exist_ok=True)
    db = d / f"{species}.sqlite3"
    run(["import2geenuff.py", "--fasta", fasta, "--gff3", gff3, "--species", species,
         "--db-path", db, "--replace-db", "--quiet"], log)
    for length in (L, TRAIN_L):
        run(["geenuff2h5.py", "--input-db-path", db, "--subsequence-length", length,
             "--h5-output-path", d / f"{species}.{length}.h5", "--quiet"], log)
        if species == HOLDOUT[0]:
            dropped = drop_holdout(d / f"{species}.{length}.h5", HOLDOUT[1])
            log.write(f"# dropped {dropped} rows of {length} bp of {species} before "
                      f"{HOLDOUT[1]} (the example)\n")
    run(["n90_train_val_split.py", "-i", d / f"{species}.{L}.h5", "-o", f"{d}/",
         "--split-within-sequences", "--block-length", 5 * L, "--val-fraction", "0.2",
         "--seed", seed, "--quiet"], log)
    scoring.mkdir(exist_ok=True)
    os.replace(d / "validation_data.h5", scoring / f"validation_data.{species}.h5")
    data.mkdir(exist_ok=True)
    log.write(f"# {species}: rows of {TRAIN_L} bp split by the blocks of "
              f"{d / 'train_val_assignment.tsv'}\n")
    split_like(d / f"{species}.{TRAIN_L}.h5", d / "train_val_assignment.tsv", done)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=pathlib.Path, required=True)
    parser.add_argument("--exclude", action="append", default=[], choices=sorted(SPECIES))
    parser.add_argument("--epochs", type=int, default=STAGES[0][1],
                        help="epochs of stage 1 (from scratch)")
    parser.add_argument("--refine-epochs", type=int, default=STAGES[1][1],
                        help="epochs of stage 2 (refinement at the lower rate; 0: none)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arch", nargs="*", help="architecture options instead of ARCH")
    parser.add_argument("--install", action="store_true",
                        help="copy the model to lib/helixtune/data/models/default.h5")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    species = [s for s in SPECIES if s not in args.exclude]
    arch = args.arch if args.arch is not None else ARCH
    with open(work / "recipe.log", "a") as log:
        t0 = time.time()
        for s in species:
            prepare(work, s, log, args.seed)
        t_data = time.time() - t0
        t0 = time.time()
        previous = None
        stages = [(STAGES[0][0], args.epochs)]
        stages += [(STAGES[1][0], args.refine_epochs)] if args.refine_epochs > 0 else []
        for stage, (rate, epochs) in enumerate(stages, 1):
            model = work / ("default.h5" if stage == len(stages) else f"stage{stage}.h5")
            if model.exists() and not model.with_name(model.name + ".train_state.npz").exists():
                previous = model  # done by an earlier run with the same --work
                continue
            start = ["-l", previous, "--resume-training"] if previous else arch
            run(["HybridModel.py", "-d", work / "data", "-s", model, *start, "--epochs",
                 epochs, "--learning-rate", rate, "--seed", args.seed, *TRAINING], log)
            previous = model
        t_train = time.time() - t0
        scores = {}
        for s in species:
            out = work / f"eval.{s}.json"
            run(["HybridModel.py", "-l", model, "-t", work / "eval" / f"validation_data.{s}.h5",
                 "--eval", "--eval-output", out, "--predict-phase", "--quiet"], log)
            report = json.loads(out.read_text())
            scores[s] = {"genic_f1": report["genic"]["f1"],
                         "phase_f1": report["phase"]["phase"]["f1"] if "phase" in report else None}
    with h5py.File(model, "r") as h5:
        weights = []
        h5["model_weights"].visititems(
            lambda name, obj: weights.append(obj.size) if isinstance(obj, h5py.Dataset) else None)
        n_params = int(sum(weights))
    size = model.stat().st_size
    summary = {"species": species, "excluded": args.exclude, "holdout": list(HOLDOUT),
               "subsequence_length": L, "training_subsequence_length": TRAIN_L,
               "stages": stages, "seed": args.seed,
               "architecture": arch, "training_options": TRAINING,
               "data_seconds": round(t_data, 1), "training_seconds": round(t_train, 1),
               "model_bytes": size, "n_params": n_params, "validation": scores}
    (work / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    if args.install:
        install(model, summary)


def install(model, summary):
    """Copy the model into the package with its provenance (shown by fetch_helixer_models.py)."""
    from helixtune import models
    target = ROOT / "lib" / "helixtune" / "data" / "models" / "default.h5"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, target)
    f1 = ", ".join(f"{s} {v['genic_f1']:.3f}" for s, v in summary["validation"].items())
    with h5py.File(target, "a") as h5:
        h5.attrs[models.PROVENANCE_ATTR] = (
            "small demonstration model bundled with helixtune (not a released Helixer model): "
            f"trained by benchmarks/default_model/recipe.py (seed {summary['seed']}, "
            f"{sum(e for _, e in summary['stages'])} epochs on rows of {TRAIN_L} bp; use "
            f"subsequence length {L}) on "
            f"{', '.join(summary['species'])} from helixtune's shared test data "
            f"(S. pombe chr I:1-{HOLDOUT[1]} held out); validation genic F1 {f1}")
    print(f"installed {target}")


if __name__ == "__main__":
    main()
