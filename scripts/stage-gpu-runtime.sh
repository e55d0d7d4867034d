#!/usr/bin/env bash
# stage-gpu-runtime.sh OUT: prepares what a GPU host without Java or Maven needs to run the GPU tests and `moe bench`:
# OUT/jre.tar.xz (a Java 17 runtime, ../shared/tools/make-jre.sh or $MAKE_JRE), OUT/deps-*.tar.xz (gpu-kernels' runtime
# jars plus the JUnit console launcher, packed with pack-chunks.sh) and OUT/classes.tar.xz (the built classes, kernels
# fatbin and test classes). Unpack on the host into a folder R (R/jre, R/lib) and point MOE_RUNTIME at it.
set -euo pipefail
out=${1:?usage: stage-gpu-runtime.sh OUT}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${SHARED_TOOLS:-$root/../shared/tools}
[ -d "$tools" ] || tools=/work/shared/tools
mkdir -p "$out"
(cd "$root" && mvn -B -o -q -pl gpu-kernels -am package -DskipTests)
junit=$(find ~/.m2/repository/org/junit/platform/junit-platform-console-standalone -name 'junit-platform-console-standalone-*.jar' | sort | tail -n1)
[ -n "$junit" ] || { echo "stage: junit-platform-console-standalone not in ~/.m2 (mvn dependency:get -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rt/lib"
cp "$root"/gpu-kernels/target/lib/*.jar "$junit" "$work/rt/lib/"
if [ ! -f "$out/jre.tar.xz" ]; then
  "$tools/make-jre.sh" "$work/jre/jre" >/dev/null
  tar -C "$work/jre" -cf - jre | xz -T0 -6 > "$out/jre.tar.xz"
fi
sum=$(ls "$work/rt/lib" | md5sum | cut -c1-8)
if [ ! -f "$out/deps.$sum" ]; then
  rm -f "$out"/deps-*.tar.xz "$out"/deps.*
  "$tools/pack-chunks.sh" "$work/rt" "$work/chunks" 60 >/dev/null 2>&1
  for c in "$work"/chunks/chunk-*.tar.xz; do mv "$c" "$out/deps-${c##*/chunk-}"; done
  touch "$out/deps.$sum"
fi
tar -C "$root" -cf - gpu-kernels/target/classes gpu-kernels/target/test-classes | xz -T0 -6 > "$out/classes.tar.xz"
ls -l "$out" | awk 'NR>1 {printf "%s %.1f MB\n", $9, $5/1048576}'
