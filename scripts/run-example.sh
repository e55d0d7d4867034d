#!/usr/bin/env bash
# The README's main job, end to end on one machine: builds the project if needed, generates a small synthetic
# DeepSeek-V3-layout model and an input dataset, runs the batch inference example in Spark local mode (the GPU
# engine on GPU 0 when one is usable, else the CPU engine) and prints rows/s and tokens/s, the engine's own
# throughput on the same data, and a check of output rows against the CPU engine.
#
#   scripts/run-example.sh [--rows N] [--tokens-per-row A-B] [--preset NAME] [--layers 0,1] [--batch-size N]
#                          [--device auto|cpu|gpu] [--precision native|fp8] [--work DIR] [-- extra batch-inference options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/spark-env.sh"

ROWS=8000; TOKENS=1-4; PRESET=tiny-deepseek; LAYERS=0,1; BATCH=512; DEVICE=auto; PRECISION=native; DTYPE=bf16
WORK="$SPARKMOE_ROOT/target/run-example"; EXTRA=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --tokens-per-row) TOKENS="$2"; shift 2 ;;
        --preset) PRESET="$2"; shift 2 ;;
        --layers) LAYERS="$2"; shift 2 ;;
        --batch-size) BATCH="$2"; shift 2 ;;
        --device) DEVICE="$2"; shift 2 ;;
        --precision) PRECISION="$2"; shift 2 ;;
        --dtype) DTYPE="$2"; shift 2 ;;
        --work) WORK="$2"; shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
NLAYERS=$(( $(tr ',' '\n' <<< "$LAYERS" | sort -n | tail -1) + 1 ))

start=$(date +%s)
sparkmoe_build_if_needed
MODEL="$WORK/model-$PRESET-$DTYPE-$NLAYERS"
if [[ ! -f "$MODEL/config.json" ]]; then
    sparkmoe_java dev.sparkmoe.examples.GenerateModel --preset "$PRESET" --layers "$NLAYERS" --dtype "$DTYPE" --output "$MODEL"
fi
sparkmoe_java dev.sparkmoe.examples.GenerateInput --model "$MODEL" --rows "$ROWS" --tokens-per-row "$TOKENS" \
    --output "$WORK/input"
sparkmoe_java dev.sparkmoe.examples.BatchInference --model "$MODEL" --layers "$LAYERS" --residual \
    --input "$WORK/input" --output "$WORK/output" --batch-size "$BATCH" --device "$DEVICE" --precision "$PRECISION" \
    --verify-rows 64 "${EXTRA[@]}"
echo "[sparkmoe] done in $(( $(date +%s) - start )) s; output Parquet in $WORK/output"
