#!/usr/bin/env bash
# Spark resource discovery script for GPUs (spark.executor.resource.gpu.discoveryScript,
# spark.worker.resource.gpu.discoveryScript): prints {"name":"gpu","addresses":["0","1",...]} with the CUDA device
# ordinals nvidia-smi lists, or an empty address list when there is no GPU or no nvidia-smi.
# Addresses are the indices nvidia-smi reports; with CUDA_VISIBLE_DEVICES set they are renumbered 0..n-1, as CUDA does.
set -uo pipefail
addresses=()
if command -v nvidia-smi >/dev/null 2>&1; then
    while IFS= read -r idx; do
        idx="${idx//[[:space:]]/}"
        [[ "$idx" =~ ^[0-9]+$ ]] && addresses+=("$idx")
    done < <(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null)
fi
if [[ -n "${CUDA_VISIBLE_DEVICES:-}" && ${#addresses[@]} -gt 0 ]]; then
    n=$(tr ',' '\n' <<< "$CUDA_VISIBLE_DEVICES" | grep -c .)
    addresses=()
    for ((i = 0; i < n; i++)); do addresses+=("$i"); done
fi
json=""
for a in "${addresses[@]+"${addresses[@]}"}"; do json+="${json:+,}\"$a\""; done
printf '{"name":"gpu","addresses":[%s]}\n' "$json"
