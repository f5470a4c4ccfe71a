#!/bin/bash
# Hint-infer over the whole dataset as a Slurm job array: task I of N starts vLLM on its own
# node's GPUs, waits until it answers, and runs `start infer --shard I/N` into its own file,
# $DATA/shards/shard-I-of-N.jsonl. A shard is the rows whose id hashes to I, so every task may
# read the same problems file, or its own copy in any order. A failed task can be resubmitted
# alone (`sbatch --array=I infer-array.sh`): it resumes its file. Then merge.sh joins the files:
#
#   jid=$(sbatch --parsable deploy/slurm/infer-array.sh)
#   sbatch --dependency=afterany:$jid deploy/slurm/merge.sh
#
# Change --array to 0-(N-1) for N shards; N is taken from the array itself.
#SBATCH --job-name=start-infer
#SBATCH --array=0-7
#SBATCH --nodes=1
#SBATCH --gres=gpu:2
#SBATCH --cpus-per-task=16
#SBATCH --mem=128G
#SBATCH --time=24:00:00
#SBATCH --output=logs/%x-%A_%a.out

set -euo pipefail

DATA=${DATA:-$PWD/data}
MODEL=${MODEL:-Qwen/QwQ-32B}
SHARDS=${SLURM_ARRAY_TASK_COUNT:?run this with sbatch --array}
PORT=$((20000 + SLURM_ARRAY_TASK_ID % 10000))
mkdir -p "$DATA/shards" logs

# vLLM on this node only: the driver's continuations resend the whole text so far, and one
# server per shard keeps every trajectory's prefix in one cache.
vllm serve "$MODEL" \
  --served-model-name qwq-32b \
  --max-model-len 32768 \
  --enable-prefix-caching \
  --tensor-parallel-size 2 \
  --gpu-memory-utilization 0.92 \
  --max-num-seqs 256 \
  --host 127.0.0.1 \
  --port "$PORT" &
VLLM_PID=$!
trap 'kill "$VLLM_PID" 2>/dev/null || true; wait "$VLLM_PID" 2>/dev/null || true' EXIT

until curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null; do
  if ! kill -0 "$VLLM_PID" 2>/dev/null; then
    echo "vLLM exited before it served the model" >&2
    exit 1
  fi
  sleep 10
done

start infer \
  --shard "$SLURM_ARRAY_TASK_ID/$SHARDS" \
  --model "http://127.0.0.1:$PORT/v1" \
  --model-name qwq-32b \
  --template-preset qwq-32b \
  --input "$DATA/problems.jsonl" \
  --output "$DATA/shards/shard-$SLURM_ARRAY_TASK_ID-of-$SHARDS.jsonl" \
  --kind math \
  --samples 4 \
  --temperature 0.6 \
  --top-p 0.95 \
  --top-k 20 \
  --max-tokens 30000 \
  --max-wall-time 7200 \
  --jobs 128 \
  --quiet
