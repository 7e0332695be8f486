#!/usr/bin/env bash
# The fine-tuning chain of Helixer's documentation, run on the bundled example with nothing
# downloaded: 100 kb of S. pombe chromosome I (never seen by the bundled default model), its 35
# annotated genes (used ONLY to score the models at the end) and stranded RNA-seq reads.
#
#   example/run_finetuning.sh [OUTPUT_DIR]        (default: helixtune_example/)
#
# Every command is printed before it runs, ready to copy. Environment: THREADS (default 2),
# EPOCHS (fine-tuning epochs at most, default 150; each takes well under a second here), PATH
# must hold the helixtune executables.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-helixtune_example}
threads=${THREADS:-2}
epochs=${EPOCHS:-150}
fasta=$here/spombe_chrI_1-100000.fa.gz
bam=$here/spombe_chrI_1-100000.bam
truth_gff3=$here/spombe_chrI_1-100000.gff3.gz
species=spombe_example
L=5346  # subsequence length: 100 kb in 19 rows per strand (a multiple of the pool size 9)
# HelixerPost thresholds: Helixer.py's defaults
edge=0.1
peak=0.8
export HELIXTUNE_THREADS=$threads

run() {  # print the command (quoted, copyable), then run it
  printf '\n$'; printf ' %q' "$@"; printf '\n'
  "$@"
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
start=$(date +%s)
default_model=$(fetch_helixer_models.py --lineage default --path)

echo "== 1. Annotate the genome with the bundled default model (3-step method, kept predictions)"
run fasta2h5.py --fasta-path "$fasta" --species "$species" --subsequence-length $L \
  --h5-output-path "$out/genome.h5" --quiet
run Helixer.py --h5-path "$out/genome.h5" --species "$species" --subsequence-length $L \
  --model-filepath "$default_model" --edge-threshold $edge --peak-threshold $peak \
  --gff-output-path "$out/default.gff3" \
  --keep-predictions "$out/default_predictions.h5" --temporary-dir "$out" --quiet

echo "== 2. Pseudolabels: the default model's genes, its most certain subsequences"
run import2geenuff.py --fasta "$fasta" --gff3 "$out/default.gff3" --species "$species" \
  --db-path "$out/pseudolabels.sqlite3" --log-file "$out/pseudolabels_import.log" \
  --replace-db --quiet
run geenuff2h5.py --input-db-path "$out/pseudolabels.sqlite3" --subsequence-length $L \
  --h5-output-path "$out/pseudolabels.h5" --quiet
run filter-to-most-certain.py --h5-to-filter "$out/pseudolabels.h5" \
  --predictions "$out/default_predictions.h5" --keep-fraction 0.5 \
  --output-file "$out/pseudolabels_filtered.h5" --report "$out/filter_report.json" --quiet

echo "== 3. RNA-seq coverage (stranded, read 1 antisense), then training/validation split"
run add_ngs_coverage.py -s "$species" -d "$out/pseudolabels_filtered.h5" -b "$bam" \
  --second-read-is-sense-strand --dataset-prefix rnaseq --threads "$threads" --quiet
run mkdir -p "$out/train"
run n90_train_val_split.py -i "$out/pseudolabels_filtered.h5" -o "$out/train/" \
  --split-within-sequences --block-length $((2 * L)) --val-fraction 0.2 --seed 1 --quiet

echo "== 4. Fine-tune the final layer of the default model: on the sequence, and with coverage"
run HybridModel.py -d "$out/train" --load-model-path "$default_model" --resume-training \
  --fine-tune --predict-phase --learning-rate 3e-3 --epochs "$epochs" --patience 30 \
  --batch-size 4 --val-test-batch-size 8 --seed 1 --save-model-path "$out/tuned.h5" --quiet
run HybridModel.py -d "$out/train" --load-model-path "$default_model" --resume-training \
  --fine-tune --predict-phase --input-coverage --coverage-norm log --learning-rate 3e-3 \
  --epochs "$epochs" --patience 30 --batch-size 4 --val-test-batch-size 8 --seed 1 \
  --save-model-path "$out/tuned_coverage.h5" --quiet

echo "== 5. Annotate with the tuned model"
run HybridModel.py --load-model-path "$out/tuned.h5" --test-data "$out/genome.h5" --overlap \
  --prediction-output-path "$out/tuned_predictions.h5" --quiet
run helixer_post_bin "$out/genome.h5" "$out/tuned_predictions.h5" 100 $edge $peak 100 \
  "$out/tuned.gff3" --quiet

echo "== 6. Score every model against the example's true genes"
run import2geenuff.py --fasta "$fasta" --gff3 "$truth_gff3" --species "$species" \
  --db-path "$out/truth.sqlite3" --replace-db --quiet
run geenuff2h5.py --input-db-path "$out/truth.sqlite3" --subsequence-length $L \
  --h5-output-path "$out/truth.h5" --quiet
run add_ngs_coverage.py -s "$species" -d "$out/truth.h5" -b "$bam" \
  --second-read-is-sense-strand --dataset-prefix rnaseq --threads "$threads" --quiet
for model in default tuned; do
  path=$out/$model.h5
  [ "$model" = default ] && path=$default_model
  run HybridModel.py --load-model-path "$path" --test-data "$out/truth.h5" --eval --overlap \
    --predict-phase --eval-output "$out/$model.eval.json" --quiet > /dev/null
done
run HybridModel.py --load-model-path "$out/tuned_coverage.h5" --test-data "$out/truth.h5" \
  --eval --overlap --predict-phase --input-coverage --coverage-norm log \
  --pretrained-model-path "$default_model" --eval-output "$out/tuned_coverage.eval.json" \
  --quiet > /dev/null

echo
echo "== Base-level scores against the true genes of the example (HybridModel.py --eval)"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print(f"{'model':<16}{'genic F1':>10}{'CDS F1':>10}{'intron F1':>11}{'phase F1':>10}")
for name in ("default", "tuned", "tuned_coverage"):
    r = json.load(open(f"{out}/{name}.eval.json"))
    f1 = lambda key: r["per_class"][key]["f1"]
    phase = r["phase"]["phase"]["f1"] if "phase" in r else float("nan")
    print(f"{name:<16}{r['genic']['f1']:>10.3f}{f1('exon'):>10.3f}{f1('intron'):>11.3f}"
          f"{phase:>10.3f}")
PY
cat <<EOF

Outputs in $out:
  default.gff3, default_predictions.h5   the default model's annotation and raw predictions
  pseudolabels_filtered.h5               the most certain pseudolabels with RNA-seq coverage
  train/                                 training_data.h5, validation_data.h5 (+ assignment TSV)
  tuned.h5, tuned_coverage.h5            the fine-tuned models
  tuned.gff3, tuned_predictions.h5       the tuned model's annotation
  *.eval.json                            the scores above
Finished in $(( $(date +%s) - start )) s.
EOF
