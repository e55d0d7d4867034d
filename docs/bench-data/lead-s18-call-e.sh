#!/usr/bin/env bash
# Session-18 lead, call e: v20 as kept - only the claiming tiles (_m128usu2d, bf16 _d) walk each expert's row blocks in
# balanced chunks (Tile kGroupOrder 1); the static tiles keep their order (call d: slower with it). (1) GPU suite on the
# new classes; (2) gemm_bench check of the changed kernels and the _do17 / _x variants; (3) layers whose claimed order
# changes (experts of >= 9 row blocks), JVMs alternating old (496876c) / new classes, three rounds.
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
K="grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_bf16_d,grouped_gemm2_bf16_d,grouped_gemm2_bf16_d_ybf16,grouped_gemm1_swiglu_fp8_m128usu2do17,grouped_gemm1_swiglu_bf16_do17,grouped_gemm1_swiglu_fp8_m128usu2x,grouped_gemm2_fp8_m128ux_ybf16,grouped_gemm1_swiglu_bf16_x"
timeout -s KILL $(left 120) python3 gemm_bench.py check --module $VAR --kernels $K --out /tmp/logs > /tmp/logs/check.log 2>&1
stamp "check rc $?: $(grep -h '^CHECK' /tmp/logs/check.log)"
bench() {  # VERSION TAG ARGS...
  local v=$1 tag=$2; shift 2; local cp=/tmp/w/gpu-kernels/target/classes; [ $v = old ] && cp=/tmp/wo/gpu-kernels/target/classes
  (cd /tmp/w && timeout -s KILL $(left 70) $JAVA -Xmx64g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench "$@" > /tmp/logs/$tag-$v.log 2>&1)
  stamp "$tag $v rc $?"
}
for r in 1 2 3; do for v in old new; do
  [ $r = 2 ] && [ $v = old ] && continue  # (round 2: new first)
  bench $v mx-r$r --shapes mixtral-8x7b --precision native --tokens 4096,32768 --runs 20
  bench $v big-r$r --shapes deepseek-v3,qwen3-30b-a3b --precision fp8,native --tokens 32768 --runs 20
  [ $r = 2 ] && [ $v = new ] && { bench old mx-r$r --shapes mixtral-8x7b --precision native --tokens 4096,32768 --runs 20
    bench old big-r$r --shapes deepseek-v3,qwen3-30b-a3b --precision fp8,native --tokens 32768 --runs 20; }
done; done
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
cp /tmp/logs/check.log $OUT/ 2>/dev/null
echo "==== check"; grep -h '"ok": false' /tmp/logs/check.log | cut -c1-300 | head; grep -h "^CHECK" /tmp/logs/check.log
echo "==== moe (ms isolated, dev_ms)"
python3 - <<'PY'
import glob, re, collections
d = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob('/tmp/logs/*-r*-*.log')):
    v = f.rsplit('-', 1)[1][:-4]
    for l in open(f):
        m = l.split()
        if m and m[0] in ('mixtral-8x7b', 'deepseek-v3', 'qwen3-30b-a3b') and len(m) > 11:
            d[f"{m[0]} {m[1]} {m[2]}"][v].append((float(m[3]), float(m[11])))
for k in sorted(d):
    o, n = d[k]['old'], d[k]['new']
    fmt = lambda xs: ' '.join(f"{a:.3f}/{b:.3f}" for a, b in xs)
    mo = sorted(a for a, _ in o)[len(o) // 2] if o else 0; mn = sorted(a for a, _ in n)[len(n) // 2] if n else 0
    print(f"{k:32s} old {fmt(o)} | new {fmt(n)} | median new/old {mn / mo if mo else 0:.4f}")
PY
