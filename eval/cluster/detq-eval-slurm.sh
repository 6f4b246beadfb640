#!/usr/bin/env bash
# Runs `detq eval` over COCO val2017 as a Slurm job array (one shard per task), then a
# dependent job merges the shards and evaluates them once.
#
#   sbatch --array=0-7 eval/cluster/detq-eval-slurm.sh           # shards
#   (the script submits the merge itself, after the array finishes)
#
# A requeued or re-run task resumes its journal (--resume): finished images are kept.
#SBATCH --job-name=detq-eval
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=12:00:00
#SBATCH --requeue
set -euo pipefail
MODEL=${MODEL:-retinanet_resnet50_fpn}
WEIGHTS=${WEIGHTS:-$HOME/weights/retinanet_resnet50_fpn.safetensors}
QUANTIZED=${QUANTIZED:-}
COCO=${COCO:-$HOME/coco}
OUT=${OUT:-$PWD/runs/$MODEL}
SHARDS=${SLURM_ARRAY_TASK_COUNT:?submit with sbatch --array=0-(N-1)}
INDEX=${SLURM_ARRAY_TASK_ID:?}
mkdir -p "$OUT"
extra=()
[ -n "$QUANTIZED" ] && extra=(--quantized "$QUANTIZED")
detq eval --model "$MODEL" --weights "$WEIGHTS" "${extra[@]}" \
  --images "$COCO/val2017" --annotations "$COCO/annotations/instances_val2017.json" \
  --shard "$INDEX/$SHARDS" --results "$OUT/shard-$INDEX.json" --resume \
  --report "$OUT/shard-$INDEX.report.json" --threads "${SLURM_CPUS_PER_TASK:-4}" --quiet
if [ "$INDEX" = 0 ]; then
  sbatch --dependency=afterok:"$SLURM_ARRAY_JOB_ID" --job-name=detq-merge --wrap \
    "detq merge $OUT/shard-*.json --out $OUT/results.json && detq cocoeval --gt $COCO/annotations/instances_val2017.json --dt $OUT/results.json --json > $OUT/cocoeval.json"
fi
