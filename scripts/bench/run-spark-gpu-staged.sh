#!/usr/bin/env bash
# The script used for issue 4 item 7 on an H200 host with no Java or Maven: run from a staged folder that holds
# jars/{examples,spark-module,gpu-kernels}.jar (this build) beside it, with a JRE and the dependency jars unpacked
# elsewhere (../shared/tools/make-jre.sh, pack-chunks.sh of the examples classpath incl. Spark):
#   run-spark-gpu-staged.sh JAVA LIBDIR WORKDIR ROWS PRESET PRECISION...
set -euo pipefail
J=$1; LIB=$2; W=$3; ROWS=$4; PRESET=$5; shift 5
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/.." && pwd)
export SPARK_LOCAL_IP=127.0.0.1 NCCL_NVLS_ENABLE=0
CP="$here/jars/examples.jar:$here/jars/spark-module.jar:$here/jars/gpu-kernels.jar:$LIB/*"
OPENS="--add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED"
JAVA="$J $OPENS -Xmx${XMX:-8g} -Djava.awt.headless=true -Dlog4j2.configurationFile=$root/scripts/spark-log4j2.properties -cp $CP"
mkdir -p "$W"
[ -f "$W/model/config.json" ] || $JAVA dev.sparkmoe.examples.GenerateModel --preset "$PRESET" --layers 1 --dtype bf16 --output "$W/model"
[ -d "$W/input" ] || $JAVA dev.sparkmoe.examples.GenerateInput --model "$W/model" --rows "$ROWS" --tokens-per-row 4-12 --encoding fp32 --output "$W/input"
for p in "$@"; do
  echo "=== precision $p"
  $JAVA dev.sparkmoe.examples.BatchInference --model "$W/model" --layers 0 --input "$W/input" --output "$W/out-$p" \
     --batch-size 8192 --device auto --precision "$p" --verify-rows 64 --verify-tolerance 2e-2 --baseline-tokens ${BASELINE:-100000} \
     --conf spark.sql.parquet.compression.codec=uncompressed
done
