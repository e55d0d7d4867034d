#!/usr/bin/env bash
# Session-7 lead: the README main job's GPU verify failure - c484ea7's gpu-kernels classes first on the classpath (old),
# and this tree with one layer (no device-resident stack).
set -o pipefail
D=$(cd "$(dirname "$0")" && pwd); J=$(cd "$D/../.gpuwork-s7c/jars" 2>/dev/null && pwd || echo /nonexistent)
mkdir -p /tmp/old && tar -xJf $D/classes-c484ea7.tar.xz -C /tmp/old
export PATH=/tmp/rt/jre/bin:$PATH SPARKMOE_PREBUILT=1
NEWCP="$J/examples-0.1.0-SNAPSHOT.jar:$J/spark-module-0.1.0-SNAPSHOT.jar:$J/gpu-kernels-0.1.0-SNAPSHOT.jar:/tmp/rt/lib/*:/tmp/spark/*"
ls $J
SPARKMOE_CLASSPATH="/tmp/old/gpu-kernels/target/classes:$NEWCP" timeout -s KILL 60 bash scripts/run-example.sh --work /tmp/ex > $OUT/old-native.log 2>&1; echo "old native rc $?"
SPARKMOE_CLASSPATH="$NEWCP" timeout -s KILL 60 bash scripts/run-example.sh --work /tmp/ex --layers 0 > $OUT/new-1layer.log 2>&1; echo "new 1 layer rc $?"
grep -h "verify:\|differs" $OUT/*.log | cut -c1-200
