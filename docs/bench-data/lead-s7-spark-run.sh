#!/usr/bin/env bash
# Session-7 lead, Spark on the H200: the README's main job (scripts/run-example.sh, Spark local mode, --device auto
# -> GPU) with the carried jars and the layer-by-layer GPU verification, native then FP8; logs under $OUT.
set -o pipefail
D=$(cd "$(dirname "$0")" && pwd)
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/spark && tar -xJf $D/chunk-3.tar.xz -C /tmp/spark
stamp "unpacked: $(ls /tmp/spark | wc -l) spark jars, $(ls /tmp/rt/lib | wc -l) runtime jars"
export PATH=/tmp/rt/jre/bin:$PATH SPARKMOE_PREBUILT=1
export SPARKMOE_CLASSPATH="$(ls $D/jars/*.jar | tr '\n' ':')/tmp/rt/lib/*:/tmp/spark/*"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/env.txt
timeout -s KILL 100 bash scripts/run-example.sh --work /tmp/ex > $OUT/example-native.log 2>&1
stamp "run-example (README defaults) rc $?"
timeout -s KILL 80 bash scripts/run-example.sh --work /tmp/ex --precision fp8 > $OUT/example-fp8.log 2>&1
stamp "run-example --precision fp8 rc $?"
grep -hE "verify|differs|rows/s|done in|Exception" $OUT/example-*.log | cut -c1-260
