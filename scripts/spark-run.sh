#!/usr/bin/env bash
# Runs a main class of the examples (or any class on the run classpath) in-process with Spark on the classpath:
#   scripts/spark-run.sh dev.sparkmoe.examples.ThroughputSweep --model ... --input ... --output-dir ...
# Builds the project first if needed. JVM flags via SPARKMOE_JAVA_OPTS (e.g. -Xmx8g).
# For a cluster, pass --master spark://host:port (scripts/local-cluster.sh starts one on loopback).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/spark-env.sh"
[[ $# -ge 1 ]] || { sed -n '2,5p' "$0"; exit 2; }
sparkmoe_build_if_needed
sparkmoe_java "$@"
