#!/usr/bin/env python3
"""Does fine-tuning help? The fine-tuning experiment of issue 15, one seeded command.

For each target species (S. pombe chr I, A. thaliana), treated as a new species:
leave-one-species-out starting model (benchmarks/default_model/recipe.py --exclude TARGET, or
--pretrained TARGET=PATH), target split into training / validation / test blocks (whole blocks,
no overlap: n90_train_val_split.py --split-within-sequences twice), then every condition of
README.md here is trained, predicts the TEST block and is scored there (compare_annotations.py
on predictions .h5 against the test labels; helixer_post_bin GFF3 against the reference genes
of the test block). Every command goes to the condition's own ``commands.log``; figures go to
WORK/results.json, from which WORK/RESULTS.md is generated.

    python benchmarks/finetune_experiment/run.py --work /tmp/ft              # the full run
    python benchmarks/finetune_experiment/run.py --work /tmp/ft --quick      # smoke run (CI)
    python benchmarks/finetune_experiment/run.py --render /tmp/ft/results.json  # RESULTS.md only

Re-running the same command skips what is done (each condition's result.json), so a killed
run continues where it stopped.
"""
import argparse
import gzip
import json
import math
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
RECIPE = ROOT / "benchmarks" / "default_model" / "recipe.py"
L = 21384  # the rows predicted and scored (the starting model's)
#: the rows trained on, as in the recipe: on a CPU the BiLSTM's cost per step is its L / pool
#: sequential steps, so 9x shorter rows give several times the bases per second and more updates
TRAIN_L = L // 9
SPOMBE_CHR = "7000000090838467"  # the seqid of S. pombe chr I in sp_chrI.fa.gz

#: target -> (FASTA, GFF3) under ../shared/data (the same files as the recipe's)
TARGETS = {
    "spombe": ("schizosaccharomyces_pombe/sp_chrI.fa.gz",
               "schizosaccharomyces_pombe/sp_chrI.genes.gff3.gz"),
    "athaliana": ("arabidopsis_thaliana/at_tair10_1pct.shared.fa.gz",
                  "arabidopsis_thaliana/at_tair10_1pct.shared.genes.gff3.gz"),
}
#: the HISAT2 BAMs of S. pombe (stranded, RF: read 2 is sense)
BAMS = {"spombe": [f"schizosaccharomyces_pombe/bam/Sp_{s}.chrI.hisat2.bam"
                   for s in ("ds", "hs", "log", "plat")]}

#: the condition names, in table order, with a one-line description (README.md explains them)
CONDITIONS = {
    "pretrained": "(1) leave-one-species-out model as is",
    "resume_ref": "(2) whole network fine-tuned on reference labels (--resume-training)",
    "finetune_ref": "(3) final layer fine-tuned on reference labels (--fine-tune)",
    "finetune_ref_doc": "(3d) as (3) with the documentation's recipe: learning rate 1e-4, "
                        "3 epochs",
    "finetune_ref_unmasked": "(3u) as (3), missing-UTR masking removed from the training labels",
    "finetune_pseudo20": "(4) final layer on pseudolabels, keep fraction 0.2",
    "finetune_pseudo50": "(4) final layer on pseudolabels, keep fraction 0.5",
    "coverage": "(5) best of (3)/(4) + RNA-seq coverage (--input-coverage --coverage-norm log)",
    "coverage_hidden": "(5) as above + --post-coverage-hidden-layer",
    "scratch": "(6) trained from scratch on the reference labels",
}
COVERAGE_CONDITIONS = ("coverage", "coverage_hidden")
UNMASKED_TARGETS = ("spombe",)  # the target whose annotation has no UTRs

#: full run and --quick: regions {seqid: (start, end)} of each target (None: whole genome),
#: split block length, epochs, patience, seeds, pretraining
SETTINGS = {
    "full": {
        "regions": {"spombe": {SPOMBE_CHR: (0, 48 * L)}, "athaliana": None},
        # pretraining epochs per target: ~2,000 steps each (without S. pombe an epoch is ~48
        # steps, without A. thaliana ~110); the bundled model needed ~1,000 steps to leave the
        # all-intergenic start and ~2,200 to reach its best
        "block_length": 3 * L, "pretrain_epochs": {"spombe": 40, "athaliana": 18},
        "pretrain_refine_epochs": 3,
        "epochs": 15, "scratch_epochs": 15, "patience": 5, "seeds": [1, 2, 3],
        "starting_model": None,
    },
    "quick": {
        "regions": {"spombe": {SPOMBE_CHR: (0, 10 * L)}, "athaliana": {"Chr1": (0, 10 * L)}},
        "block_length": 2 * L, "pretrain_epochs": 1, "pretrain_refine_epochs": 0, "epochs": 1,
        "scratch_epochs": 1, "patience": 1, "seeds": [1],
        # a starting model that predicts genes without minutes of training: upstream's tiny
        # model, trained on S. pombe chr I (leave-one-out for A. thaliana, NOT for S. pombe)
        "starting_model": "helixer_h5/upstream_0.3.6/tiny_model.h5",
    },
}
#: learning rate per mode (the issue's experience: --fine-tune needs ~1e-3, 1e-4 is too slow;
#: the example's: the new final layer, randomly initialised, needs many steps at 1e-3 or more)
LEARNING_RATES = {"resume": 3e-4, "fine_tune": 3e-3, "scratch": 1e-3}
#: the documentation's fine-tuning recipe (condition finetune_ref_doc)
DOC_RECIPE = {"learning_rate": 1e-4, "epochs": 3}
CLASS_WEIGHTS = "[1.0, 1.5, 0.6, 2.0]"  # the recipe's
BATCH_SIZE = 32  # rows of TRAIN_L, as in the recipe
POST_THREADS = 2  # helixer_post_bin --threads (the same GFF3 with any; the two strands at once)


class Log:
    """A condition's (or step's) command log: every command, then its stdout/stderr."""

    def __init__(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fh = open(path, "a")

    def run(self, cmd):
        line = shlex.join(str(c) for c in cmd)
        self.fh.write(f"$ {line}\n")
        self.fh.flush()
        t0 = time.time()
        result = subprocess.run([str(c) for c in cmd], stdout=self.fh, stderr=self.fh)
        self.fh.write(f"# exit {result.returncode}, {time.time() - t0:.1f} s\n")
        self.fh.flush()
        if result.returncode:
            raise SystemExit(f"command failed (see {self.path}): {line}")

    def note(self, text):
        self.fh.write(f"# {text}\n")
        self.fh.flush()

    def close(self):
        self.fh.close()


def row_keys(path):
    """(seqid, start, end) of every row of an HDF5 data file."""
    with h5py.File(path, "r") as h5:
        ids = [s.decode() if isinstance(s, bytes) else str(s) for s in h5["data/seqids"][:]]
        se = h5["data/start_ends"][:]
    return [(i, int(a), int(b)) for i, (a, b) in zip(ids, se)]


def copy_rows_where(src_path, dst_path, keep):
    """Write the rows of ``src_path`` where ``keep`` is True to ``dst_path``."""
    from helixtune import h5rows
    tmp = dst_path.with_name(dst_path.name + ".part")
    with h5py.File(src_path, "r") as src, h5py.File(tmp, "w") as dst:
        names = h5rows.copy_structure(src, [dst], [int(keep.sum())], len(keep))
        h5rows.copy_rows(src, [dst], [keep], names, 64)
    os.replace(tmp, dst_path)
    return int(keep.sum())


def crop(src, dst, regions):
    """Keep the rows of ``src`` lying inside ``regions`` ({seqid: (start, end)})."""
    keep = np.array([s in regions and regions[s][0] <= min(a, b) and max(a, b) <= regions[s][1]
                     for s, a, b in row_keys(src)])
    return copy_rows_where(src, dst, keep)


def split_short(short, like, outputs):
    """Write the rows of ``short`` (TRAIN_L) lying inside a row of ``like[i]`` (L rows; both
    tile each sequence from position 0, so a short row lies inside exactly one L row of its
    strand) to ``outputs[i]``; returns the row counts."""
    def key(seqid, a, b):
        return seqid, min(a, b) // L, a > b

    counts = []
    keys = [key(*k) for k in row_keys(short)]
    for p, out in zip(like, outputs):
        wanted = {key(*k) for k in row_keys(p)}
        counts.append(copy_rows_where(short, out, np.array([k in wanted for k in keys])))
    return counts


def same_rows(src, dst, like):
    """Keep the rows of ``src`` that ``like`` has (paired by seqid, start, end)."""
    wanted = set(row_keys(like))
    return copy_rows_where(src, dst, np.array([k in wanted for k in row_keys(src)]))


def masked_positions(path):
    """Sample-weight-0 bases that are not padding (the masking of error regions, e.g. missing
    UTRs), and all non-padding bases."""
    masked = total = 0
    with h5py.File(path, "r") as h5:
        x, sw = h5["data/X"], h5["data/sample_weights"]
        for i in range(len(sw)):
            real = x[i].sum(-1) > 0
            masked += int((real & (sw[i] == 0)).sum())
            total += int(real.sum())
    return masked, total


def unmask(src, dst):
    """Copy of ``src`` with every non-padding base weighted 1 (masking removed)."""
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as h5:
        x, sw = h5["data/X"], h5["data/sample_weights"]
        for i in range(len(sw)):
            row = sw[i]
            row[x[i].sum(-1) > 0] = 1
            sw[i] = row


def trivial_genic_f1(path):
    """Genic F1 (Helixer's: TP/FP/FN summed over UTR, CDS and intron) of predicting every base
    CDS, the best constant prediction, on the weighted bases (as scored) and on all non-padding
    bases: TP = CDS bases, FP = all other bases, FN = UTR + intron bases."""
    counts = np.zeros((2, 4), np.int64)  # [weighted, all] x [intergenic, UTR, CDS, intron]
    with h5py.File(path, "r") as h5:
        x, y, sw = h5["data/X"], h5["data/y"], h5["data/sample_weights"]
        for i in range(len(sw)):
            real = x[i].sum(-1) > 0
            classes = np.argmax(y[i], -1)
            for k, where in enumerate((real & (sw[i] > 0), real)):
                counts[k] += np.bincount(classes[where], minlength=4)
    out = {}
    for k, name in enumerate(("weighted", "all_bases")):
        ig, utr, cds, intron = (int(c) for c in counts[k])
        tp, fp, fn = cds, ig + utr + intron, utr + intron
        out[name] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return out


def write_region_fasta(fasta, out, region):
    """The sequences of ``region`` ({seqid: (0, end)}) cut to their ends: the same coordinates
    as the genome, less to label for compare_annotations.py."""
    keep, n = None, 0
    with gzip.open(fasta, "rt") as fh, open(out, "w") as dst:
        for line in fh:
            if line.startswith(">"):
                keep = region.get(line[1:].split()[0])
                n = 0
                if keep:
                    dst.write(line)
            elif keep and n < keep[1]:
                seq = line.strip()[:keep[1] - n]
                n += len(seq)
                dst.write(seq + "\n")


def test_regions(test_h5):
    """The merged base intervals {seqid: [(start, end), ...]} the test rows cover."""
    spans = {}
    for s, a, b in row_keys(test_h5):
        spans.setdefault(s, set()).add((min(a, b), max(a, b)))
    merged = {}
    for s, intervals in spans.items():
        out = []
        for a, b in sorted(intervals):
            if out and a <= out[-1][1]:
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        merged[s] = out
    return merged


def gff3_within(gff3, out, regions):
    """Write the genes of ``gff3`` (and their features) that lie wholly inside ``regions``."""
    def attr(col9, key):
        for field in col9.split(";"):
            if field.startswith(key + "="):
                return field[len(key) + 1:]
        return None

    lines, parent, inside = [], {}, set()
    with gzip.open(gff3, "rt") if str(gff3).endswith(".gz") else open(gff3) as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            fid, par = attr(cols[8], "ID"), attr(cols[8], "Parent")
            if fid and par:
                parent[fid] = par.split(",")[0]
            if cols[2] == "gene" and fid:
                a, b = int(cols[3]) - 1, int(cols[4])
                if any(x <= a and b <= y for x, y in regions.get(cols[0], ())):
                    inside.add(fid)
            lines.append((cols, fid, par))

    def gene_of(fid):
        seen = 0
        while fid in parent and fid not in inside and seen < 10:
            fid, seen = parent[fid], seen + 1
        return fid

    with open(out, "w") as fh:
        fh.write("##gff-version 3\n")
        for cols, fid, par in lines:
            root = gene_of(fid) if fid else gene_of(par.split(",")[0]) if par else None
            if root in inside:
                fh.write("\t".join(cols) + "\n")
    return len(inside)


class Experiment:
    def __init__(self, args):
        self.args = args
        self.mode = "quick" if args.quick else "full"
        self.cfg = dict(SETTINGS[self.mode])
        if args.seeds:
            self.cfg["seeds"] = args.seeds
        for key in ("epochs", "pretrain_epochs", "scratch_epochs"):
            if getattr(args, key) is not None:
                self.cfg[key] = getattr(args, key)
        self.work = args.work.resolve()
        self.pretrained_given = dict(p.split("=", 1) for p in args.pretrained)
        bindir = str(pathlib.Path(sys.executable).parent)
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.results_path = self.work / "results.json"

    # ---- data -------------------------------------------------------------------------------
    def prepare_target(self, target):
        """Labels of the target (cropped to its region), coverage, the three-way split, the
        reference genes of the test block, the masking counts. Returns a dict of paths/figures."""
        d = self.work / target / "data"
        info_path = d / "info.json"
        if info_path.exists():
            return json.loads(info_path.read_text())
        if d.exists():
            shutil.rmtree(d)  # a killed preparation: start afresh
        d.mkdir(parents=True)
        log = Log(d / "commands.log")
        fasta, gff3 = (SHARED / p for p in TARGETS[target])
        t0 = time.time()
        log.run(["import2geenuff.py", "--fasta", fasta, "--gff3", gff3, "--species", target,
                 "--db-path", d / "ref.sqlite3", "--replace-db", "--quiet"])
        region = self.cfg["regions"][target]
        assert not region or all(a == 0 for a, _ in region.values()), \
            "regions start at 0 (helixer_post_bin needs rows contiguous from position 0)"
        # labels.h5: rows of L (predicted, scored, split); labels_short.h5: rows of TRAIN_L
        # (trained on), the same bases
        for length, name in ((L, "labels.h5"), (TRAIN_L, "labels_short.h5")):
            genome = d / f"genome_{name}"
            log.run(["geenuff2h5.py", "--input-db-path", d / "ref.sqlite3",
                     "--subsequence-length", length, "--h5-output-path", genome, "--quiet"])
            if target in BAMS:
                log.run(["add_ngs_coverage.py", "-s", target, "-b",
                         *(SHARED / b for b in BAMS[target]), "-d", genome, "--dataset-prefix",
                         "rnaseq", "--second-read-is-sense-strand", "--quiet"])
            if region:
                n = crop(genome, d / name, region)
                log.note(f"cropped {genome} to {region} (python: run.crop): {n} rows -> {name}")
                genome.unlink()
            else:
                genome.rename(d / name)
        labels = d / "labels.h5"
        split = ["--split-within-sequences", "--block-length", self.cfg["block_length"],
                 "--val-fraction", "0.2", "--seed", "1", "--quiet"]
        (d / "split1").mkdir(exist_ok=True)
        log.run(["n90_train_val_split.py", "-i", labels, "-o", f"{d / 'split1'}/", *split])
        os.replace(d / "split1" / "training_data.h5", d / "nontest.h5")
        os.replace(d / "split1" / "validation_data.h5", d / "test.h5")
        log.note("test block = validation_data.h5 of split1; nontest.h5 = its training_data.h5")
        (d / "split2").mkdir(exist_ok=True)
        log.run(["n90_train_val_split.py", "-i", d / "nontest.h5", "-o", f"{d / 'split2'}/",
                 *split])
        (d / "ref").mkdir(exist_ok=True)
        roles = ("training", "validation")
        counts = split_short(d / "labels_short.h5",
                             [d / "split2" / f"{role}_data.h5" for role in roles],
                             [d / "ref" / f"{role}_data.h5" for role in roles])
        log.note(f"ref/training_data.h5, ref/validation_data.h5: the {counts} rows of "
                 f"{TRAIN_L} bp of labels_short.h5 inside the rows of split2/training_data.h5, "
                 "split2/validation_data.h5 (python: run.split_short)")
        regions = test_regions(d / "test.h5")
        n_genes = gff3_within(gff3, d / "test_reference.gff3", regions)
        log.note(f"test_reference.gff3: the {n_genes} genes of {gff3} wholly inside the test "
                 f"block {regions} (python: run.gff3_within)")
        compare_fasta = fasta
        if region:
            compare_fasta = d / "region.fa"
            write_region_fasta(fasta, compare_fasta, region)
            log.note(f"region.fa: {fasta} cut to {region} for compare_annotations.py "
                     "(python: run.write_region_fasta)")
        info = {"fasta": str(fasta), "gff3": str(gff3), "region": region,
                "compare_fasta": str(compare_fasta),
                "rows": {name: len(row_keys(p)) for name, p in (
                    ("all", labels), ("training", d / "split2" / "training_data.h5"),
                    ("validation", d / "split2" / "validation_data.h5"),
                    ("test", d / "test.h5"), ("training_short", d / "ref" / "training_data.h5"),
                    ("validation_short", d / "ref" / "validation_data.h5"))},
                "training_subsequence_length": TRAIN_L,
                "test_regions": regions, "test_reference_genes": n_genes,
                "data_seconds": round(time.time() - t0, 1)}
        for name, p in (("training", d / "ref" / "training_data.h5"), ("test", d / "test.h5")):
            masked, total = masked_positions(p)
            info[f"masked_{name}"] = {"masked_bases": masked, "bases": total,
                                      "fraction": masked / total if total else None}
        if target in UNMASKED_TARGETS:
            (d / "ref_unmasked").mkdir(exist_ok=True)
            unmask(d / "ref" / "training_data.h5", d / "ref_unmasked" / "training_data.h5")
            shutil.copyfile(d / "ref" / "validation_data.h5",
                            d / "ref_unmasked" / "validation_data.h5")
            log.note("ref_unmasked/training_data.h5: ref/training_data.h5 with every non-padding "
                     "base weighted 1 (python: run.unmask); validation kept as in ref/")
        log.close()
        info_path.write_text(json.dumps(info, indent=1) + "\n")
        return json.loads(info_path.read_text())  # as --render will see it

    def pretrain_epochs(self, target):
        epochs = self.cfg["pretrain_epochs"]
        return epochs[target] if isinstance(epochs, dict) else epochs

    def pretrained(self, target):
        """The leave-one-species-out starting model of ``target`` (trained or given)."""
        if target in self.pretrained_given:
            return pathlib.Path(self.pretrained_given[target]).resolve(), None
        if self.cfg["starting_model"]:
            return SHARED / self.cfg["starting_model"], None
        work = self.work / f"pretrained_{target}"
        model = work / "default.h5"
        if not model.exists():
            log = Log(work / "commands.log")
            t0 = time.time()
            log.run([sys.executable, RECIPE, "--work", work, "--exclude", target, "--epochs",
                     self.pretrain_epochs(target), "--refine-epochs",
                     self.cfg["pretrain_refine_epochs"], "--seed", self.args.pretrain_seed])
            log.note(f"pretraining wall {time.time() - t0:.1f} s")
            log.close()
        return model, work / "commands.log"

    def pseudolabels(self, target, model, fraction):
        """Pseudolabel training and validation files on the reference route's blocks: the
        training block's rows filtered to the most certain, the validation block's kept whole
        (no reference label is used, not even for early stopping)."""
        d = self.work / target / "data"
        out = d / f"pseudo{int(fraction * 100)}"
        if (out / "training_data.h5").exists():
            return out
        log = Log(d / "pseudolabels.log")
        p = d / "pseudo"
        p.mkdir(exist_ok=True)
        ref = {role: d / "ref" / f"{role}_data.h5" for role in ("training", "validation")}
        if not (p / "pseudo_validation.h5").exists():
            fasta = SHARED / TARGETS[target][0]
            # helixer_post_bin needs rows contiguous from position 0: the whole region
            log.run(["HybridModel.py", "-l", model, "-t", d / "labels.h5", "-p",
                     p / "pred_region.h5", "--quiet"])
            log.run(["helixer_post_bin", "--genome-h5", d / "labels.h5", "--predictions-h5",
                     p / "pred_region.h5", "--gff-output-path", p / "pseudo.gff3", "--threads",
                     POST_THREADS, "--quiet"])
            log.run(["HybridModel.py", "-l", model, "-t", ref["training"], "-p",
                     p / "pred_training.h5", "--quiet"])
            log.run(["import2geenuff.py", "--fasta", fasta, "--gff3", p / "pseudo.gff3",
                     "--species", target, "--db-path", p / "pseudo.sqlite3", "--replace-db",
                     "--quiet"])
            log.run(["geenuff2h5.py", "--input-db-path", p / "pseudo.sqlite3",
                     "--subsequence-length", TRAIN_L, "--h5-output-path", p / "pseudo_genome.h5",
                     "--quiet"])
            if target in BAMS:
                log.run(["add_ngs_coverage.py", "-s", target, "-b",
                         *(SHARED / b for b in BAMS[target]), "-d", p / "pseudo_genome.h5",
                         "--dataset-prefix", "rnaseq", "--second-read-is-sense-strand",
                         "--quiet"])
            for role, like in ref.items():
                n = same_rows(p / "pseudo_genome.h5", p / f"pseudo_{role}.h5", like)
                log.note(f"pseudo_{role}.h5: the {n} rows of pseudo_genome.h5 that {like} has "
                         "(python: run.same_rows)")
        out.mkdir(exist_ok=True)
        log.run(["filter-to-most-certain.py", "--h5-to-filter", p / "pseudo_training.h5",
                 "--predictions", p / "pred_training.h5", "--test-data", ref["training"],
                 "--output-file", out / "training_data.h5", "--keep-fraction", fraction,
                 "--quiet"])
        shutil.copyfile(p / "pseudo_validation.h5", out / "validation_data.h5")
        log.note(f"{out / 'validation_data.h5'}: copy of {p / 'pseudo_validation.h5'}")
        log.close()
        return out

    # ---- conditions -------------------------------------------------------------------------
    def train_command(self, condition, data, model, pretrained, seed):
        cfg = self.cfg
        common = ["-d", data, "-s", model, "--seed", seed, "--batch-size", BATCH_SIZE,
                  "--class-weights", CLASS_WEIGHTS, "--patience", cfg["patience"],
                  "--predict-phase"]  # not --quiet: the log keeps each check's F1
        if condition == "scratch":
            return ["HybridModel.py", *common, "--epochs", cfg["scratch_epochs"],
                    "--learning-rate", LEARNING_RATES["scratch"]]
        if condition == "resume_ref":
            return ["HybridModel.py", *common, "--epochs", cfg["epochs"], "-l", pretrained,
                    "--resume-training", "--learning-rate", LEARNING_RATES["resume"]]
        if condition == "finetune_ref_doc":
            return ["HybridModel.py", *common, "--epochs", DOC_RECIPE["epochs"], "-l",
                    pretrained, "--resume-training", "--fine-tune", "--learning-rate",
                    DOC_RECIPE["learning_rate"]]
        cmd = ["HybridModel.py", *common, "--epochs", cfg["epochs"], "-l", pretrained,
               "--resume-training", "--fine-tune", "--learning-rate", LEARNING_RATES["fine_tune"]]
        if condition in COVERAGE_CONDITIONS:
            cmd += ["--input-coverage", "--coverage-norm", "log"]
            if condition == "coverage_hidden":
                cmd.append("--post-coverage-hidden-layer")
        return cmd

    def data_for(self, target, condition, model, route):
        d = self.work / target / "data"
        if condition in ("resume_ref", "finetune_ref", "finetune_ref_doc", "scratch"):
            return d / "ref"
        if condition == "finetune_ref_unmasked":
            return d / "ref_unmasked"
        if condition.startswith("finetune_pseudo"):
            return self.pseudolabels(target, model, int(condition[-2:]) / 100)
        return self.data_for(target, route, model, None)  # coverage: the chosen route's data

    def score_all_bases(self, target, cdir, log):
        """Genic F1 of the condition's predictions on every base of the test block, the masked
        ones included with their labels (S. pombe: intergenic where UTRs are missing), so a model
        that calls the masked bases genic is seen."""
        d = self.work / target / "data"
        test_all = d / "test_all_bases.h5"
        if not test_all.exists():
            unmask(d / "test.h5", test_all)
            log.note(f"{test_all}: test.h5 with every non-padding base weighted 1 (python: "
                     "run.unmask)")
        log.run(["compare_annotations.py", "--reference", test_all, "--predictions",
                 cdir / "predictions.h5", "--prediction-data", d / "labels.h5", "--names",
                 cdir.parent.name, "--output-dir", cdir / "compare_all_bases", "--quiet"])
        report = json.loads((cdir / "compare_all_bases" / "report.json").read_text())
        return report["predictions"][0]["genic_f1"]

    def run_condition(self, target, condition, seed, pretrained, route=None):
        cdir = self.work / target / condition / f"seed{seed}"
        done = cdir / "result.json"
        if done.exists():
            result = json.loads(done.read_text())
            if "genic_f1_all" not in result:  # scored before that score existed: add it
                log = Log(cdir / "commands.log")
                result["genic_f1_all"] = self.score_all_bases(target, cdir, log)
                log.note("result (with genic_f1_all): " + json.dumps(result))
                log.close()
                done.write_text(json.dumps(result, indent=1) + "\n")
            return result
        if cdir.exists():
            shutil.rmtree(cdir)  # a killed attempt: start the condition afresh
        cdir.mkdir(parents=True)
        log = Log(cdir / "commands.log")
        d = self.work / target / "data"
        coverage = condition in COVERAGE_CONDITIONS
        if condition != "pretrained":  # prepared before the clock starts (pseudolabels: once)
            data = self.data_for(target, condition, pretrained, route)
            log.note(f"training data: {data}" + (f" (route {route})" if route else ""))
        t0 = time.time()
        if condition == "pretrained":
            model = pretrained
        else:
            model = cdir / "model.h5"
            log.run(self.train_command(condition, data, model, pretrained, seed))
        t_train = time.time() - t0
        # the whole region is predicted: helixer_post_bin needs rows contiguous from 0; the
        # scores are taken on the test rows (bases) and test-block genes (features) only
        pred = cdir / "predictions.h5"
        cmd = ["HybridModel.py", "-l", model, "-t", d / "labels.h5", "-p", pred, "--quiet"]
        if coverage:
            cmd += ["--input-coverage", "--coverage-norm", "log", "--pretrained-model-path",
                    pretrained]
        log.run(cmd)
        wall = time.time() - t0
        log.run(["compare_annotations.py", "--reference", d / "test.h5", "--predictions", pred,
                 "--prediction-data", d / "labels.h5", "--names", condition, "--output-dir",
                 cdir / "compare_bases", "--quiet"])
        log.run(["helixer_post_bin", "--genome-h5", d / "labels.h5", "--predictions-h5", pred,
                 "--gff-output-path", cdir / "genes_region.gff3", "--threads", POST_THREADS,
                 "--quiet"])
        info = json.loads((d / "info.json").read_text())
        n = gff3_within(cdir / "genes_region.gff3", cdir / "genes.gff3", info["test_regions"])
        log.note(f"genes.gff3: the {n} predicted genes wholly inside the test block "
                 "(python: run.gff3_within)")
        log.run(["compare_annotations.py", "--reference", d / "test_reference.gff3",
                 "--predictions", cdir / "genes.gff3", "--fasta", info["compare_fasta"],
                 "--names", condition, "--output-dir", cdir / "compare_features", "--quiet"])
        genic_f1_all = self.score_all_bases(target, cdir, log)
        bases = json.loads((cdir / "compare_bases" / "report.json").read_text())["predictions"][0]
        feats = json.loads((cdir / "compare_features" / "report.json").read_text())
        result = {
            "target": target, "condition": condition, "seed": seed,
            "genic_f1": bases["genic_f1"], "genic_f1_all": genic_f1_all,
            "phase_f1": bases["phase_f1"],
            "exon_f1": feats["predictions"][0]["features"]["exon"]["f1"],
            "gene_f1": feats["predictions"][0]["features"]["gene"]["f1"],
            "genes": feats["annotations"][1]["counts"]["genes"],
            "reference_genes": feats["annotations"][0]["counts"]["genes"],
            "wall_s": round(wall, 1), "training_s": round(t_train, 1),
            "route": route, "log": str(cdir.relative_to(self.work) / "commands.log"),
        }
        log.note("result: " + json.dumps(result))
        log.close()
        done.write_text(json.dumps(result, indent=1) + "\n")
        return result

    def run(self):
        self.work.mkdir(parents=True, exist_ok=True)
        t_start = time.time()
        results = {"mode": self.mode, "settings": {**self.cfg, "learning_rates": LEARNING_RATES,
                                                   "class_weights": CLASS_WEIGHTS,
                                                   "subsequence_length": L,
                                                   "training_subsequence_length": TRAIN_L,
                                                   "batch_size": BATCH_SIZE,
                                                   "doc_recipe": DOC_RECIPE},
                   "conditions": CONDITIONS, "targets": {}, "runs": []}
        for target in self.args.targets:
            info = self.prepare_target(target)
            model, model_log = self.pretrained(target)
            how = ("given with --pretrained" if target in self.pretrained_given else
                   "--quick: upstream's tiny model, trained on S. pombe chr I: "
                   + ("NOT leave-one-out here" if target == "spombe" else "leave-one-out here"))
            info["pretrained"] = {"path": str(model), "log": str(model_log) if model_log else how}
            info["trivial_all_genic_f1"] = trivial_genic_f1(self.work / target / "data" / "test.h5")
            summary = model.parent / "summary.json"
            if model_log and summary.exists():
                info["pretrained"]["summary"] = json.loads(summary.read_text())
            results["targets"][target] = info
            runs = []
            base = ["pretrained", "resume_ref", "finetune_ref", "finetune_ref_doc",
                    "finetune_pseudo20",
                    "finetune_pseudo50", "scratch"]
            if target in UNMASKED_TARGETS:
                base.insert(base.index("finetune_ref_doc") + 1, "finetune_ref_unmasked")
            for seed in self.cfg["seeds"]:
                for condition in base:
                    if condition == "pretrained" and seed != self.cfg["seeds"][0]:
                        continue  # deterministic: one row
                    runs.append(self.run_condition(target, condition, seed, model))
                    self.save(results, runs)
            if target in BAMS:
                route = best_route(runs)
                info["coverage_route"] = route
                for seed in self.cfg["seeds"]:
                    for condition in COVERAGE_CONDITIONS:
                        runs.append(self.run_condition(target, condition, seed, model, route))
                        self.save(results, runs)
            results["runs"] += runs
        results["total_wall_s"] = round(time.time() - t_start, 1)
        self.save(results, [])
        return results

    def save(self, results, pending):
        out = dict(results, runs=results["runs"] + pending)
        out["aims"] = aims(out)
        tmp = self.results_path.with_suffix(".json.part")
        tmp.write_text(json.dumps(out, indent=1) + "\n")
        os.replace(tmp, self.results_path)
        (self.work / "RESULTS.md").write_text(render(out))


def best_route(runs):
    """The best of (3)/(4) by mean test genic F1 (the route coverage is added to)."""
    candidates = ("finetune_ref", "finetune_pseudo20", "finetune_pseudo50")
    means = {c: np.mean([r["genic_f1"] for r in runs if r["condition"] == c]) for c in candidates}
    return max(candidates, key=lambda c: means[c])


# ---- summary and RESULTS.md ----------------------------------------------------------------
def stats(runs, target, condition, key="genic_f1"):
    values = [r.get(key) for r in runs if r["target"] == target and r["condition"] == condition
              and r.get(key) is not None]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1))
            if len(values) > 1 else None, "n": len(values)}


def compare(a, b):
    """b - a with a noise verdict: beyond noise when |diff| > 2 standard errors."""
    if a is None or b is None:
        return None
    diff = b["mean"] - a["mean"]
    if a["sd"] is None and b["sd"] is None:
        noise = "noise not measured (one seed)"
    else:
        se = math.sqrt(sum((s["sd"] or 0.0) ** 2 / s["n"] for s in (a, b)))
        noise = "beyond noise" if abs(diff) > 2 * se else "within noise"
    return {"diff": diff, "noise": noise}


def verdict(ok, diff):
    """met / missed, saying when the noise was not measured (one seed)."""
    status = "met" if ok else "missed"
    return status + " (one seed: noise not measured)" if diff["noise"].startswith("noise") \
        else status


def aims(results):
    """Acceptance item 3's aims per target: met / missed / not measured, with the numbers."""
    runs, out = results["runs"], {}
    for target in results.get("targets", {}):
        pre = stats(runs, target, "pretrained")
        ref = {c: stats(runs, target, c) for c in ("resume_ref", "finetune_ref")}
        ref = {c: s for c, s in ref.items() if s}
        pseudo = {c: stats(runs, target, c) for c in ("finetune_pseudo20", "finetune_pseudo50")}
        pseudo = {c: s for c, s in pseudo.items() if s}
        entry = {"reference_gain": {"aim": "fine-tuning on reference labels gains >= 0.10 test "
                                           "genic F1", "status": "not measured"},
                 "pseudolabel_recovery": {"aim": "the best pseudolabel route recovers >= half "
                                                 "of that gain", "status": "not measured"}}
        if pre and ref:
            best = max(ref, key=lambda c: ref[c]["mean"])
            gain = compare(pre, ref[best])
            entry["reference_gain"].update(best=best, **gain,
                                           status=verdict(gain["diff"] >= 0.10, gain))
            if pseudo:
                bp = max(pseudo, key=lambda c: pseudo[c]["mean"])
                rec = compare(pre, pseudo[bp])
                positive = gain["diff"] > 0
                entry["pseudolabel_recovery"].update(
                    best=bp, **rec,
                    fraction_of_gain=rec["diff"] / gain["diff"] if positive else None,
                    status=verdict(positive and rec["diff"] >= 0.5 * gain["diff"], rec)
                    + ("" if positive else ": no reference gain to recover"))
        route = results["targets"][target].get("coverage_route")
        cov = {c: stats(runs, target, c) for c in COVERAGE_CONDITIONS}
        cov = {c: s for c, s in cov.items() if s}
        if route and cov and stats(runs, target, route):
            bc = max(cov, key=lambda c: cov[c]["mean"])
            diff = compare(stats(runs, target, route), cov[bc])
            entry["coverage"] = {"aim": f"coverage helps over {route} without it", "best": bc,
                                 **diff, "status": verdict(diff["diff"] > 0 and
                                                           diff["noise"] != "within noise", diff)}
        else:
            entry["coverage"] = {"aim": "coverage helps", "status": "not measured",
                                 "why": "no RNA-seq BAMs for this target"
                                 if target not in BAMS else "not run yet"}
        out[target] = entry
    return out


def _f(v, digits=3):
    return "–" if v is None else f"{v:.{digits}f}"


def _ms(s):
    if s is None:
        return "–"
    return f"{s['mean']:.3f} ± {s['sd']:.3f}" if s["sd"] is not None else f"{s['mean']:.3f}"


def render(results):
    """RESULTS.md from results.json."""
    cfg, runs = results["settings"], results["runs"]
    lines = ["# Fine-tuning experiment: results" + (
        " of a SMOKE RUN (`--quick`, not evidence)" if results["mode"] == "quick" else ""), ""]
    if results["mode"] == "quick":
        lines += ["**SMOKE RUN (`--quick`): tiny regions, 1 epoch, 1 seed. These numbers test "
                  "that the harness runs; they are not evidence about fine-tuning.**", ""]
    epochs = f"epochs {cfg['epochs']} (scratch {cfg['scratch_epochs']}" + (
        ")" if cfg["starting_model"] else
        f", pretraining {cfg['pretrain_epochs']} + {cfg.get('pretrain_refine_epochs', 0)} "
        "refining)")
    lines += [f"Generated by `benchmarks/finetune_experiment/run.py` from `results.json` "
              f"(mode `{results['mode']}`, seeds {cfg['seeds']}, {epochs}, "
              f"patience {cfg['patience']}, learning rates {cfg['learning_rates']}, class "
              f"weights {cfg['class_weights']}, batches of {cfg.get('batch_size', 8)} rows of "
              f"{cfg.get('training_subsequence_length', cfg['subsequence_length'])} bp; "
              f"`finetune_ref_doc`: {cfg.get('doc_recipe')}). Every row's commands and tool "
              "output are in "
              "the log named in its last column (relative to the work directory). All scores "
              "are on the TEST block: genic and phase F1 from `compare_annotations.py` on the "
              "predictions .h5 against the test labels (masked bases left out); exon F1 and "
              "genes from `compare_annotations.py` on the `helixer_post_bin` GFF3 against the "
              "reference genes wholly inside the test block. Wall = training + prediction of "
              "the region (data and pseudolabel preparation not included; the logs time every "
              "command).",
              ""]
    if "total_wall_s" in results:
        lines += [f"Total wall time: {results['total_wall_s']:.0f} s.", ""]
    for target, info in results["targets"].items():
        lines += [f"## {target}", ""]
        rows = info["rows"]
        lines.append(f"Region {info['region'] or 'whole genome'}; rows (both strands) all "
                     f"{rows['all']}, training {rows['training']}, validation "
                     f"{rows['validation']}, test {rows['test']} (of {L} bp; trained on "
                     f"{rows.get('training_short')} / {rows.get('validation_short')} rows of "
                     f"{info.get('training_subsequence_length')} bp of the same blocks); "
                     f"test block "
                     f"{info['test_regions']}, {info['test_reference_genes']} reference genes "
                     f"wholly inside it. Starting model: `{info['pretrained']['path']}` "
                     f"({info['pretrained']['log']}).")
        m = info["masked_training"]
        lines += ["", f"Masked (sample weight 0, not padding) bases of the training block: "
                  f"{m['masked_bases']:,} of {m['bases']:,} ({_f(m['fraction'])}); "
                  f"test block: {info['masked_test']['masked_bases']:,} of "
                  f"{info['masked_test']['bases']:,} ({_f(info['masked_test']['fraction'])})."]
        trivial = info.get("trivial_all_genic_f1")
        if trivial:
            lines.append(f"Baseline: predicting every base CDS scores genic F1 "
                         f"{trivial['weighted']:.3f} on the scored (unmasked) test bases and "
                         f"{trivial['all_bases']:.3f} on all test bases; `genic F1 (all)` scores "
                         "every base of the test block, the masked ones with their labels.")
        if info.get("coverage_route"):
            lines.append(f"Coverage conditions use the route `{info['coverage_route']}` (best "
                         "of (3)/(4) by mean test genic F1).")
        lines += ["", "| condition | seed | genic F1 | genic F1 (all) | phase F1 | exon F1 | "
                  "genes (ref) | wall s | log |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in runs:
            if r["target"] == target:
                lines.append(f"| {r['condition']} | {r['seed']} | {_f(r['genic_f1'])} | "
                             f"{_f(r.get('genic_f1_all'))} | {_f(r['phase_f1'])} | "
                             f"{_f(r['exon_f1'])} | {r['genes']} "
                             f"({r['reference_genes']}) | {r['wall_s']:.0f} | `{r['log']}` |")
        lines += ["", "Mean ± SD over seeds (SD only with ≥ 2 seeds):", "",
                  "| condition | what | genic F1 | genic F1 (all) | phase F1 | exon F1 | Δ genic F1 "
                  "vs pretrained |", "|---|---|---:|---:|---:|---:|---|"]
        pre = stats(runs, target, "pretrained")
        for c, what in CONDITIONS.items():
            s = stats(runs, target, c)
            if s is None:
                continue
            d = compare(pre, s) if c != "pretrained" else None
            delta = f"{d['diff']:+.3f} ({d['noise']})" if d else "–"
            all_bases = _ms(stats(runs, target, c, "genic_f1_all"))
            lines.append(f"| {c} | {what} | {_ms(s)} | {all_bases}"
                         f" | {_ms(stats(runs, target, c, 'phase_f1'))}"
                         f" | {_ms(stats(runs, target, c, 'exon_f1'))} | {delta} |")
        lines += ["", "Aims (acceptance item 3):", ""]
        for entry in results.get("aims", {}).get(target, {}).values():
            detail = ""
            if "diff" in entry:
                detail = (f": Δ genic F1 {entry['diff']:+.3f} ({entry['noise']}; "
                          f"best {entry['best']})")
                if entry.get("fraction_of_gain") is not None:
                    detail += f", {entry['fraction_of_gain']:.0%} of the reference gain"
            elif entry.get("why"):
                detail = f": {entry['why']}"
            lines.append(f"- {entry.get('aim', '')} — **{entry['status']}**{detail}")
        lines.append("")
    return "\n".join(lines)


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=pathlib.Path, help="work directory (created)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10-row regions, 1 epoch, 1 seed, tiny starting model")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default: 1 2 3; quick: 1)")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs (default: per mode)")
    parser.add_argument("--scratch-epochs", type=int, help="from-scratch epochs")
    parser.add_argument("--pretrain-epochs", type=int, help="recipe.py --epochs")
    parser.add_argument("--pretrain-seed", type=int, default=1, help="recipe.py --seed")
    parser.add_argument("--pretrained", action="append", default=[], metavar="TARGET=MODEL.h5",
                        help="use this leave-one-species-out model for TARGET instead of "
                             "training it with recipe.py (it must not have seen TARGET)")
    parser.add_argument("--render", type=pathlib.Path, metavar="RESULTS_JSON",
                        help="only write RESULTS.md beside this results.json")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text())
        (args.render.parent / "RESULTS.md").write_text(render(results))
        return 0
    if not args.work:
        get_parser().error("--work is required")
    for p in args.pretrained:
        if "=" not in p or p.split("=", 1)[0] not in TARGETS:
            get_parser().error(f"--pretrained {p}: give TARGET=MODEL.h5 with TARGET in "
                               f"{list(TARGETS)}")
    results = Experiment(args).run()
    print(f"wrote {args.work / 'results.json'} and RESULTS.md "
          f"({results['total_wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
