#!/usr/bin/env bash
# spark-submit for machines without a Spark distribution: runs Spark's own SparkSubmit on Spark's jars alone
# (examples/target/spark-classpath.txt), so the application's jars travel exactly as they would from a distribution:
# the primary jar and --jars. With SPARK_HOME/bin/spark-submit present, that one is used instead.
#   JARS=$(cat examples/target/submit-jars.txt)
#   scripts/spark-submit.sh --master spark://127.0.0.1:7077 --class dev.sparkmoe.examples.BatchInference \
#       --jars "$JARS" examples/target/examples-0.1.0-SNAPSHOT.jar --model ... --input ... --output ...
set -euo pipefail
if [[ -n "${SPARK_HOME:-}" && -x "$SPARK_HOME/bin/spark-submit" ]]; then exec "$SPARK_HOME/bin/spark-submit" "$@"; fi
source "$(dirname "${BASH_SOURCE[0]}")/spark-env.sh"
[[ $# -ge 1 ]] || { sed -n '2,8p' "$0"; exit 2; }
sparkmoe_build_if_needed
cp=$(sparkmoe_spark_classpath)
# shellcheck disable=SC2086
exec java $SPARKMOE_ADD_OPENS -Dlog4j2.configurationFile="$SPARKMOE_ROOT/scripts/spark-log4j2.properties" ${SPARKMOE_JAVA_OPTS:-} \
    -cp "$cp" org.apache.spark.deploy.SparkSubmit "$@"
