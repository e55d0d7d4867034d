#!/usr/bin/env bash
# build-kernels.sh OUTDIR: compiles every kernel family (*.cu here, one family per file) into one fatbin,
# OUTDIR/moe_kernels.fatbin, holding sm_90a machine code (wgmma, bulk copies) and compute_90 PTX. The families are
# compiled as one translation unit (a generated file that includes each .cu) because a module is loaded from one
# image. Without nvcc the build goes on CPU-only and the GPU engine later says the fatbin is missing.
# Environment: NVCC (default nvcc), MOE_NVCC_FLAGS (extra flags), MOE_BENCH_VARIANTS=1 (also compile the grouped GEMMs'
# benchmark-only variants, grouped_gemm.cu; the engine never launches them).
set -euo pipefail
out=${1:?usage: build-kernels.sh OUTDIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nvcc=${NVCC:-nvcc}
mkdir -p "$out"
if ! command -v "$nvcc" >/dev/null 2>&1; then
  echo "[build-kernels] nvcc not found: building without CUDA kernels (the GPU engine will report them missing)"
  rm -f "$out/moe_kernels.fatbin"; exit 0
fi
shopt -s nullglob
cus=("$src"/*.cu)
if [ ${#cus[@]} -eq 0 ]; then echo "[build-kernels] no .cu sources"; exit 0; fi
stamp="$out/moe_kernels.fatbin"
flags="-DMOE_BENCH_VARIANTS=${MOE_BENCH_VARIANTS:-0} ${MOE_NVCC_FLAGS:-}"
flagfile="$out/.moe_kernels.flags"  # a build with other flags is not up to date
newest=$(ls -t "$src"/*.cu "$src"/*.cuh "$src"/build-kernels.sh 2>/dev/null | head -n1)
if [ -f "$stamp" ] && [ "$stamp" -nt "$newest" ] && [ "$(cat "$flagfile" 2>/dev/null)" = "$flags" ]; then
  echo "[build-kernels] up to date"; exit 0
fi
echo "[build-kernels] $("$nvcc" --version | tail -n1)"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
unity="$work/moe_kernels_all.cu"
for cu in "${cus[@]}"; do echo "#include \"$cu\""; done > "$unity"
tmp="$out/.moe_kernels.$$.fatbin"
started=$(date +%s)  # the fatbin is stamped with this: a source edited while nvcc runs makes the next build redo it
# shellcheck disable=SC2086
# --compress-mode=size: nvcc's default mode left the fatbin uncompressed once the benchmark variants were gated out
# (6.1 MB instead of 0.9 MB); needs a CUDA >= 12.8 driver, below what CUDA 13's sm_90a code needs anyway
"$nvcc" -fatbin -std=c++17 -O3 --expt-relaxed-constexpr -lineinfo --compress-mode=size \
  -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90 \
  -I "$src" $flags -o "$tmp" "$unity" || { rm -f "$tmp"; exit 1; }
mv "$tmp" "$stamp"
echo "$flags" > "$flagfile"
touch -d "@$started" "$stamp"
echo "[build-kernels] wrote $stamp ($(stat -c %s "$stamp") bytes) from ${#cus[@]} kernel files"
