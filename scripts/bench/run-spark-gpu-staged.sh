#!/usr/bin/env bash
# Issue 4 item 7 on an H200 host that has no Java or Maven: the BatchInference example end to end (Parquet in ->
# MoE layers on the GPU -> Parquet out) against the engine's own throughput on the same data, then the same job on a
# standalone cluster on loopback whose worker offers the GPU through scripts/gpu-discovery.sh.
#
#   run-spark-gpu-staged.sh RUNTIME JARS WORKDIR
#     RUNTIME  folder with jre/ and lib/*.jar (the examples' dependency jars, Spark included); a jlinked jre/ needs
#              jdk.incubator.vector (Spark 4's executor command adds --add-modules=jdk.incubator.vector: without it
#              every executor of the cluster step exits at launch) and jdk.jfr for JFR=1
#     JARS     folder with examples.jar, spark-module.jar, gpu-kernels.jar of this build
#     WORKDIR  scratch folder (model, input, outputs)
#   env: PRESET (qwen3-30b-a3b), LAYERS (48: every MoE layer of Qwen3-30B-A3B), ROWS (250000), TOKENS (4-12), ENCODING (bf16), BATCH (8192),
#        PRECISION (fp8), STEPS ("one stack cluster"), OUT (logs; default WORKDIR/logs), JFR=1 (profile the 1-layer job)
set -uo pipefail
RT=$1; JARS=$2; W=$3
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
LAYERS=${LAYERS:-48}; ROWS=${ROWS:-250000}; TOKENS=${TOKENS:-4-12}; ENCODING=${ENCODING:-bf16}; BATCH=${BATCH:-8192}
PRECISION=${PRECISION:-fp8}; STEPS=${STEPS-one stack cluster}; OUT=${OUT:-$W/logs}
mkdir -p "$W" "$OUT"
export PATH="$RT/jre/bin:$PATH" SPARK_LOCAL_IP=127.0.0.1 NCCL_NVLS_ENABLE=0
export SPARKMOE_PREBUILT=1 SPARKMOE_CLASSPATH="$JARS/examples.jar:$JARS/spark-module.jar:$JARS/gpu-kernels.jar:$RT/lib/*"
source "$root/scripts/spark-env.sh"
java_run() { # shellcheck disable=SC2086
    timeout "${TIMEOUT:-3000}" java $SPARKMOE_ADD_OPENS -Djava.awt.headless=true -Xmx${XMX:-48g} ${JOPTS:-} \
        -Dlog4j2.configurationFile="$root/scripts/spark-log4j2.properties" -cp "$SPARKMOE_CLASSPATH" "$@"; }
echo "host: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"

layer_list=$(seq -s, 0 $((LAYERS - 1)))
t0=$(date +%s)
[ -f "$W/model/config.json" ] || java_run dev.sparkmoe.examples.GenerateModel --preset "${PRESET:-qwen3-30b-a3b}" --layers "$LAYERS" \
    --dtype fp8 --depth-scaled-init --output "$W/model" 2>&1 | tail -1  # bounded through a deep residual stack
[ -d "$W/input" ] || java_run dev.sparkmoe.examples.GenerateInput --model "$W/model" --rows "$ROWS" --tokens-per-row "$TOKENS" \
    --encoding "$ENCODING" --output "$W/input" --conf spark.sql.parquet.compression.codec=uncompressed 2>&1 | grep -v " INFO " | tail -1
echo "data ready in $(( $(date +%s) - t0 )) s: $(du -sh "$W/model" | cut -f1) model, $(du -sh "$W/input" | cut -f1) input"

job() { # name, master, extra args...
    local name=$1 master=$2; shift 2
    echo "=== $name"
    java_run dev.sparkmoe.examples.BatchInference --master "$master" --model "$W/model" --input "$W/input" \
        --output "$W/out-$name" --batch-size "$BATCH" --device auto --precision "$PRECISION" \
        --conf spark.sql.parquet.compression.codec=uncompressed --conf spark.sql.files.maxPartitionBytes=32m "$@" \
        > "$OUT/$name.log" 2>&1
    echo "exit $?"; grep -E "^(sparkmoe|  |rows|micro-batches|engine only|Spark end|verify|RESULT)" "$OUT/$name.log" | grep -v "^  at " | tail -12
    grep -E "Exception|Error" "$OUT/$name.log" | head -3
    rm -rf "$W/out-$name"
}
for step in $STEPS; do case $step in
one)   JOPTS=${JFR:+-XX:StartFlightRecording=filename=$OUT/one-layer.jfr,settings=profile} \
       job one-layer "local[*]" --layers 0 --verify-rows 16 --verify-tolerance 3e-2 --baseline-tokens 400000 ;;
stack) job stack-$LAYERS "local[*]" --layers "$layer_list" --residual --verify-rows ${VERIFY_ROWS:-4} --verify-tolerance 3e-2 \
           --baseline-tokens ${STACK_BASELINE:-300000} ;;
cluster)
    "$root/scripts/local-cluster.sh" start --workers 1 --cores 8 --memory 48g
    gpu_conf=(); [ -n "$("$root/scripts/gpu-discovery.sh" | grep -o '"0"')" ] && gpu_conf=(--conf spark.executor.resource.gpu.amount=1 \
        --conf spark.task.resource.gpu.amount=0.125)
    TIMEOUT=${CLUSTER_TIMEOUT:-400} job cluster "spark://127.0.0.1:7077" --layers 0 --verify-rows 16 --verify-tolerance 3e-2 \
        --baseline-tokens 0 "${gpu_conf[@]}" --conf spark.sparkmoe.executorWaitSeconds=120 --conf spark.executor.cores=8 --conf spark.executor.memory=${EXECUTOR_MEMORY:-40g}
    echo "executor device line:"; grep -rh "sparkmoe: executor" "$root/target/local-cluster/work" 2>/dev/null | head -3
    # an executor that died at launch leaves its reason only in its stderr under the worker's work dir
    grep -rlE "^(Error|Exception)|FindException" "$root/target/local-cluster/work" 2>/dev/null | head -1 | xargs -r grep -vE "^\s+at " | tail -4
    "$root/scripts/local-cluster.sh" stop
    # the cluster's own logs (master, worker, executors' stderr) live in the checkout: keep them with the job's log
    tar -czf "$OUT/cluster-logs.tgz" -C "$root/target" local-cluster/logs local-cluster/work local-cluster/spark-defaults.conf 2>/dev/null ;;
esac; done
echo "--- summary"; grep -h "^RESULT" "$OUT"/*.log
