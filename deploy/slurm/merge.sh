#!/bin/bash
# Joins the shard files of infer-array.sh into $DATA/trajectories.jsonl: dedup by (id, sample),
# the first complete trajectory wins, torn or malformed lines are skipped and listed in
# $DATA/merge-skipped.jsonl. Idempotent: after resubmitting a failed shard, run it again and
# only what is missing is added. Submit it after the array:
#
#   sbatch --dependency=afterany:$jid deploy/slurm/merge.sh
#SBATCH --job-name=start-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --output=logs/%x-%j.out

set -euo pipefail

DATA=${DATA:-$PWD/data}

start merge \
  --output "$DATA/trajectories.jsonl" \
  --skipped "$DATA/merge-skipped.jsonl" \
  "$DATA"/shards/shard-*.jsonl
