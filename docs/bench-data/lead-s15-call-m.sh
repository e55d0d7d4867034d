#!/usr/bin/env bash
# Session-15 review, call m: every consumer stage step through one next_stage() that also carries the kIncDesc
# descriptor words (the per-unit reset removed; the idle warpgroup's steps now carry them too). gemm_bench check of the
# 7 changed production kernels (ragged experts with idle second warpgroups, no padding skip, the large case), then the
# GPU suite on the new classes.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/w && rm -rf /tmp/w/* /tmp/logs/*
(tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait); tar -xJf $P/classes.tar.xz -C /tmp/w
cp $P/../../scripts/bench/gemm_bench.py /tmp/w/
stamp unpacked
K="grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm2_fp8_m128u,grouped_gemm2_fp8_m128u_ybf16,grouped_gemm2_fp8_u,grouped_gemm2_fp8_u_ybf16,grouped_gemm2_fp8_ud,grouped_gemm2_fp8_ud_ybf16"
(cd /tmp/w && timeout -s KILL 90 python3 gemm_bench.py check --module $P/variants.fatbin --kernels $K --out /tmp/logs > $OUT/check.log 2>&1)
stamp "check rc $?: $(grep -h '^CHECK' $OUT/check.log)"
export PATH=/tmp/rt/jre/bin:$PATH
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
(cd /tmp/w && timeout -s KILL 150 java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
xz -c /tmp/logs/test.log > $OUT/test.log.xz
grep -h '"kernel"' $OUT/check.log | cut -c1-150
