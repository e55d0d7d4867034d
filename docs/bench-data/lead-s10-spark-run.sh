#!/usr/bin/env bash
# Session-10 lead, Spark on the H200 (call 3 of 3 after the runtime calls; jars of d9d220e): the README's main job (scripts/run-example.sh,
# Spark local mode, --device auto -> GPU) with the layer-by-layer GPU verification: README defaults (native, 2 layers),
# --precision fp8, --layers 0, and --dtype fp8 (DeepSeek FP8 block-scaled checkpoint) with fp8; logs under $OUT.
set -o pipefail
D=$(cd "$(dirname "$0")" && pwd)
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/spark && tar -xJf $D/chunk-3.tar.xz -C /tmp/spark
stamp "unpacked: $(ls /tmp/spark | wc -l) spark jars, $(ls /tmp/rt/lib | wc -l) runtime jars"
export PATH=/tmp/rt/jre/bin:$PATH SPARKMOE_PREBUILT=1
export SPARKMOE_CLASSPATH="$(ls $D/jars/*.jar | tr '\n' ':')/tmp/rt/lib/*:/tmp/spark/*"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/env.txt
run() { local n=$1 cap=$2; shift 2
  timeout -s KILL $cap bash scripts/run-example.sh --work /tmp/ex "$@" > $OUT/example-$n.log 2>&1
  stamp "run-example $n ($*) rc $?"; }
run native 100
run fp8 80 --precision fp8
# (layer0 run in session 8 call c)
run fp8ckpt 80 --precision fp8 --dtype fp8
grep -hE "verify|differs|rows/s|done in|Exception|rror" $OUT/example-*.log | cut -c1-260
