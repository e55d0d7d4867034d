#!/usr/bin/env bash
# Session-18 lead, call d: v20 - every production 128-row tile walks each expert's row blocks in balanced chunks (Tile
# kGroupOrder 1), static or claiming. (1) GPU suite on the new classes; (2) gemm_bench check of the changed kernels and
# the _o17 variants (= the former production, byte for byte); (3) gemm_bench layer rows (Mixtral 4096 / 32768, DeepSeek-V3
# 4096 / 16384): new vs _o17, static and claiming; (4) layers, JVMs alternating old (496876c) / new classes, and the new
# classes with gemmDynamicUnits=off (the static BF16 GEMM1) on Mixtral BF16.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-580}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/wo /tmp/logs/* && mkdir -p /tmp/w /tmp/wo
R=$G/rt
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & tar -xJf $R/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $R/classes.tar.xz -C /tmp/w; tar -xJf $R/old-classes.tar.xz -C /tmp/wo
JAVA=/tmp/rt/jre/bin/java
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader > $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
(cd /tmp/w && timeout -s KILL $(left 200) $JAVA -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
B=$G/../scripts/bench; VAR=$G/var/moe_kernels.fatbin
cd $B
K="grouped_gemm1_swiglu_fp8_m128usu2,grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm2_fp8_m128u,grouped_gemm2_fp8_m128u_ybf16,grouped_gemm1_swiglu_bf16,grouped_gemm1_swiglu_bf16_d,grouped_gemm2_bf16,grouped_gemm2_bf16_ybf16,grouped_gemm2_bf16_d,grouped_gemm2_fp8_n128,grouped_gemm2_bf16_n128,grouped_gemm1_swiglu_fp8_m128usu2o17,grouped_gemm1_swiglu_fp8_m128usu2do17,grouped_gemm2_fp8_m128uo17_ybf16,grouped_gemm1_swiglu_bf16_o17,grouped_gemm1_swiglu_bf16_do17"
timeout -s KILL $(left 120) python3 gemm_bench.py check --module $VAR --kernels $K --out /tmp/logs > /tmp/logs/check.log 2>&1
stamp "check rc $?: $(grep -h '^CHECK' /tmp/logs/check.log)"
SKIPS=$(python3 -c "
import gemm_bench as g
want={'skip','noskip','m128usu2','m128usu2o17','m128usu2d','m128usu2do17','m128u_ybf16','m128uo17_ybf16','d','o17','do17'}
print(','.join(t for t in ('skip','noskip','lookahead','baseline')+g.V4 if t not in want))")
timeout -s KILL $(left 150) python3 gemm_bench.py layer --module $VAR --shapes 5,6,7,0,1,2 --runs 12 --skip "$SKIPS" --out /tmp/logs > /tmp/logs/layer.log 2>&1
stamp "layer rc $?"
bench() {  # VERSION TAG ARGS...
  local v=$1 tag=$2; shift 2; local cp=/tmp/w/gpu-kernels/target/classes; [ $v = old ] && cp=/tmp/wo/gpu-kernels/target/classes
  local props=""; [ "${OFF:-}" = 1 ] && props="-Dsparkmoe.gpu.gemmDynamicUnits=off"
  (cd /tmp/w && timeout -s KILL $(left 70) $JAVA -Xmx64g $props -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench "$@" > /tmp/logs/$tag-$v.log 2>&1)
  stamp "$tag $v rc $?"
}
for r in 1 2; do for v in old new; do
  bench $v mx-r$r --shapes mixtral-8x7b --precision fp8,native --tokens 4096,32768 --runs 20
  bench $v dq-r$r --shapes deepseek-v3,qwen3-30b-a3b --precision fp8 --tokens 4096,32768 --runs 20
done; done
OFF=1 bench new off-r1 --shapes mixtral-8x7b --precision native --tokens 4096,32768 --runs 20
OFF=1 bench old off-r1 --shapes mixtral-8x7b --precision native --tokens 4096,32768 --runs 20
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
cp /tmp/logs/check.log /tmp/logs/layer.log $OUT/ 2>/dev/null
echo "==== check"; grep -h '"ok": false' /tmp/logs/check.log | cut -c1-300 | head; grep -h "^CHECK" /tmp/logs/check.log
echo "==== layer"; python3 -c "
import json
for r in json.load(open('/tmp/logs/gemm_layer.json'))['results']:
    print(r['shape'][:90])
    for k, v in r.items():
        if isinstance(v, dict): print('   ', k, v.get('ms'), v.get('tflops'), v.get('error', '')[:80])
"
echo "==== moe (ms isolated, dev_ms)"
for f in /tmp/logs/mx-r*.log /tmp/logs/dq-r*.log /tmp/logs/off-r*.log; do echo "-- $(basename $f)"; grep -hE "^(mixtral|deepseek|qwen)" $f | awk '{print $1, $2, $3, $4, $12}'; done
