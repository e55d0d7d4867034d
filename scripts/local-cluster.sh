#!/usr/bin/env bash
# A real multi-process Spark standalone cluster on this machine, on loopback only: one Master and N Worker JVMs
# started from the project's run classpath (Spark's jars included), for tests and throughput runs. Each worker
# launches executor JVMs with the same classpath (through SPARK_DIST_CLASSPATH) and, when nvidia-smi sees GPUs,
# offers them as the 'gpu' resource found by scripts/gpu-discovery.sh.
#
#   scripts/local-cluster.sh start [--workers 2] [--cores 1] [--memory 2g] [--port 7077] [--spark-only]
#     --spark-only: the daemons and executors get Spark's jars alone (examples/target/spark-classpath.txt), as from a
#     Spark distribution, so jobs must ship the project's jars themselves (scripts/spark-submit.sh --jars ...)
#   scripts/local-cluster.sh status | stop
#
# Then run a job against it, e.g.
#   scripts/spark-run.sh dev.sparkmoe.examples.BatchInference --master spark://127.0.0.1:7077 ...
# (In-JVM alternative for tests: the master URL local-cluster[2,1,1024], which needs SPARK_HOME pointing at a
# directory with a jars/ folder and SPARK_SCALA_VERSION=2.13 - see LoopbackClusterTest.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/spark-env.sh"

DIR="$SPARKMOE_ROOT/target/local-cluster"
cmd="${1:-}"; shift || true
WORKERS=2; CORES=1; MEMORY=2g; PORT=7077; SPARK_ONLY=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --workers) WORKERS="$2"; shift 2 ;;
        --cores) CORES="$2"; shift 2 ;;
        --memory) MEMORY="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --spark-only) SPARK_ONLY=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

running() { [[ -f "$DIR/pids" ]] && while read -r pid; do kill -0 "$pid" 2>/dev/null && return 0; done < "$DIR/pids"; return 1; }

wait_for() { # file pattern seconds
    for ((i = 0; i < $3 * 2; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.5
    done
    echo "[local-cluster] timed out waiting for '$2' in $1:" >&2; tail -20 "$1" >&2; return 1
}

case "$cmd" in
start)
    if running; then echo "[local-cluster] already running (scripts/local-cluster.sh stop first)" >&2; exit 1; fi
    sparkmoe_build_if_needed
    rm -rf "$DIR"; mkdir -p "$DIR/logs" "$DIR/work" "$DIR/spark-home/jars"
    echo "sparkmoe stand-in for a Spark distribution: classes come from SPARK_DIST_CLASSPATH" > "$DIR/spark-home/RELEASE"
    props="$DIR/spark-defaults.conf"
    : > "$props"
    gpus=$("$SPARKMOE_ROOT/scripts/gpu-discovery.sh" | { grep -o '"[0-9]*"' || true; } | wc -l)
    if (( gpus > 0 )); then
        echo "spark.worker.resource.gpu.amount $gpus" >> "$props"
        echo "spark.worker.resource.gpu.discoveryScript $SPARKMOE_ROOT/scripts/gpu-discovery.sh" >> "$props"
    fi
    if (( SPARK_ONLY )); then SPARKMOE_CLASSPATH=$(sparkmoe_spark_classpath); fi
    export SPARK_HOME="$DIR/spark-home" SPARK_SCALA_VERSION=2.13 SPARK_DIST_CLASSPATH="$SPARKMOE_CLASSPATH"
    export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR="$DIR/logs"
    nohup java $SPARKMOE_ADD_OPENS -Xmx512m -Dlog4j2.configurationFile="$SPARKMOE_ROOT/scripts/spark-log4j2.properties" \
        -Dlog4j2.level=info -cp "$SPARKMOE_CLASSPATH" org.apache.spark.deploy.master.Master \
        --host 127.0.0.1 --port "$PORT" --webui-port 0 --properties-file "$props" > "$DIR/logs/master.log" 2>&1 &
    echo $! > "$DIR/pids"
    for ((i = 0; i < 60; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.5; done
    for ((w = 1; w <= WORKERS; w++)); do
        mkdir -p "$DIR/work/$w"
        nohup java $SPARKMOE_ADD_OPENS -Xmx512m -Dlog4j2.configurationFile="$SPARKMOE_ROOT/scripts/spark-log4j2.properties" \
            -cp "$SPARKMOE_CLASSPATH" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores "$CORES" \
            --memory "$MEMORY" --work-dir "$DIR/work/$w" --webui-port 0 --properties-file "$props" \
            "spark://127.0.0.1:$PORT" > "$DIR/logs/worker-$w.log" 2>&1 &
        echo $! >> "$DIR/pids"
    done
    sleep 1
    # registration is logged at INFO, which our log config hides for Spark: check the master's port and the JVMs instead
    for ((i = 0; i < 60; i++)); do
        alive=0; while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done < "$DIR/pids"
        (( alive == WORKERS + 1 )) || { echo "[local-cluster] a JVM exited; logs in $DIR/logs" >&2; tail -n 5 "$DIR"/logs/*.log >&2; exit 1; }
        (( i >= 6 )) && break; sleep 0.5
    done
    echo "[local-cluster] master spark://127.0.0.1:$PORT, $WORKERS worker(s) x $CORES core(s) x $MEMORY, GPUs offered per worker: $gpus"
    echo "[local-cluster] logs and executor work dirs in $DIR; stop with scripts/local-cluster.sh stop"
    ;;
status)
    if running; then echo "[local-cluster] running: $(tr '\n' ' ' < "$DIR/pids")"; else echo "[local-cluster] not running"; fi
    ;;
stop)
    if [[ -f "$DIR/pids" ]]; then
        tac "$DIR/pids" | while read -r pid; do kill "$pid" 2>/dev/null || true; done
        sleep 1
        rm -f "$DIR/pids"
    fi
    echo "[local-cluster] stopped"
    ;;
*)
    sed -n '2,15p' "$0"; exit 2 ;;
esac
