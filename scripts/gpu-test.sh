#!/usr/bin/env bash
# gpu-test.sh [launcher args...]: runs the GPU tests (JUnit tag "gpu") on a GPU host; they skip with a printed reason
# where no usable GPU is found.
#  - With Maven on the PATH: `mvn -B -Pgpu-tests -pl gpu-kernels -am test` (builds as needed; MVN_OFFLINE=1 adds -o).
#  - Without Maven (a GPU host that only has a carried runtime): the JUnit console launcher over classes built
#    elsewhere (gpu-kernels/target/classes with the kernels fatbin, gpu-kernels/target/test-classes), with
#      MOE_RUNTIME  a folder holding lib/*.jar (the module's runtime jars and junit-platform-console-standalone-*.jar)
#                   and optionally jre/ (used when no java is on the PATH)
#      MOE_JAVA     the java to use (default: java on the PATH, else $MOE_RUNTIME/jre/bin/java)
#    Extra arguments go to the launcher (e.g. --select-class=dev.sparkmoe.gpu.GpuMoeEngineGpuTest instead of the scan).
# Reports: gpu-kernels/target/gpu-test-reports (or $MOE_TEST_REPORTS).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
reports=${MOE_TEST_REPORTS:-$root/gpu-kernels/target/gpu-test-reports}
if command -v mvn >/dev/null 2>&1 && [ -z "${MOE_RUNTIME:-}" ]; then
  exec mvn -B ${MVN_OFFLINE:+-o} -Pgpu-tests -pl gpu-kernels -am test "$@"
fi
rt=${MOE_RUNTIME:?no Maven here: set MOE_RUNTIME to a folder with lib/*.jar (and jre/), see the header of this script}
java=${MOE_JAVA:-$(command -v java || echo "$rt/jre/bin/java")}
[ -x "$java" ] || { echo "gpu-test: no java found (PATH, MOE_JAVA, $rt/jre/bin/java)" >&2; exit 2; }
classes=$root/gpu-kernels/target/classes
tests=$root/gpu-kernels/target/test-classes
[ -d "$classes" ] && [ -d "$tests" ] || { echo "gpu-test: build first (mvn -pl gpu-kernels -am test-compile): $classes or $tests missing" >&2; exit 2; }
[ -f "$classes/dev/sparkmoe/kernels/moe_kernels.fatbin" ] || echo "gpu-test: warning: no kernels fatbin in $classes (built without nvcc); the GPU tests will skip" >&2
cp="$classes:$tests"
for j in "$rt"/lib/*.jar; do cp="$cp:$j"; done
select=(--scan-class-path "$tests" --include-tag gpu)
if [ $# -gt 0 ]; then select=("$@"); fi
mkdir -p "$reports"
exec "$java" -Xmx24g -cp "$cp" org.junit.platform.console.ConsoleLauncher execute \
  --disable-banner --details=tree --reports-dir "$reports" "${select[@]}"
