#!/usr/bin/env python3
"""Standalone check and timing of the grouped GEMM kernels (gpu-kernels/src/main/cuda/grouped_gemm.cu) on a GPU host.

Loads our compiled fatbin (or cubin) with CuPy's RawModule, builds the tile-packed layouts of grouped_gemm.cuh with
torch, and
  check: compares every entry point against a float64 reference on fresh random inputs (never zeros), outputs
         poisoned beforehand (NaN) so unwritten rows fail; ragged expert sizes, an empty expert, padding rows and
         surplus (unused) row blocks are covered;
  bench: times the issue's grouped GEMM shapes (CUDA events, warm-up, median of >= 20 runs, the L2 flushed by a
         256 MB write before each run) against torch._grouped_mm (bf16) and torch._scaled_grouped_mm (fp8 rowwise)
         in the same process; TFLOPS count 2*M*N*K over real rows only (N = packed gate+up rows for GEMM1).
         Every check also launches twice and requires bitwise-identical outputs.
  sweep: persistent grid sizes of the 2-CTA cluster variant; profile: one launch per --kernels name (under ncu).
Usage: gemm_bench.py {check|bench|sweep|profile|probe} --module grouped_gemm.fatbin [--out DIR] [--kernels a,b]
Build the module with build-kernels.sh; the benchmark-only variants (every TILES entry the engine never launches:
earlier versions and experiments, docs/kernel-notes.md) are compiled only with MOE_BENCH_VARIANTS=1:
  MOE_BENCH_VARIANTS=1 gpu-kernels/src/main/cuda/build-kernels.sh /tmp/fb   # -> /tmp/fb/moe_kernels.fatbin
(the engine's own fatbin holds the production, accuracy, gather and dynamic-unit kernels; a variant missing from the
module is reported as that kernel's error and the run goes on).
"""
import argparse
import warnings
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import cupy as cp

ROW_BLOCK = 128
FAST_THREADS = 384
# kernel name -> (block_m, packed_n, stages, cluster size): mirrors grouped_gemm.cu / GroupedGemmConfig
TILES = {
    "grouped_gemm1_swiglu_bf16": (128, 256, 4, 1),
    "grouped_gemm2_bf16": (128, 256, 4, 1),
    "grouped_gemm2_bf16_n128": (128, 128, 6, 1),
    "grouped_gemm1_swiglu_bf16_u": (128, 256, 4, 1),  # v5's warp-uniform descriptors on the BF16 tiles (session 4)
    "grouped_gemm2_bf16_u": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_fp8": (64, 256, 5, 1),
    "grouped_gemm1_swiglu_fp8_nooverlap": (64, 256, 5, 1),
    "grouped_gemm1_swiglu_fp8_cluster": (64, 256, 5, 2),
    "grouped_gemm1_swiglu_fp8_p32": (64, 256, 5, 1),
    "grouped_gemm2_fp8": (64, 256, 5, 1),
    "grouped_gemm2_fp8_n128": (128, 128, 6, 1),
    "grouped_gemm2_fp8_p32": (64, 256, 5, 1),
    "grouped_gemm1_swiglu_fp8_early": (64, 256, 5, 1),
    "grouped_gemm2_fp8_early": (64, 256, 5, 1),
    "grouped_gemm1_swiglu_fp8_lookahead": (64, 256, 5, 1),
    "grouped_gemm2_fp8_lookahead": (64, 256, 5, 1),
    # v4 (session 3): 128 rows x 256 packed rows, warpgroups on the row halves, two wgmma halves each
    "grouped_gemm1_swiglu_fp8_m128": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128n128": (128, 128, 6, 1),
    # v4.1: early producer lookup + prefetched routing weights (_pf: 64-row tile), on the 128-row tile (_m128p), and
    # the 128-row tile with the second warpgroup two K blocks behind (_m128s)
    "grouped_gemm1_swiglu_fp8_pf": (64, 256, 5, 1),
    "grouped_gemm2_fp8_pf": (64, 256, 5, 1),
    "grouped_gemm1_swiglu_fp8_m128p": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128p": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_fp8_m128s": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128s": (128, 256, 4, 1),
    "grouped_gemm2_fp8_pfs": (64, 256, 5, 1),  # _pf with the second warpgroup two K blocks behind (GEMM2 only)
    # v5 (session 4): warp-uniform descriptor arithmetic (_m128u: the 128-row tile, _u: the 64-row tile) and _m128u with
    # the e4m3 output staged in shared memory + one bulk store per warpgroup (_m128us, GEMM1 only)
    "grouped_gemm1_swiglu_fp8_m128u": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128u": (128, 256, 3, 1),  # 3 stages since session 14 (4 before: _m128u4)
    "grouped_gemm1_swiglu_fp8_u": (64, 256, 5, 1),
    "grouped_gemm2_fp8_u": (64, 256, 5, 1),
    "grouped_gemm1_swiglu_fp8_m128us": (128, 256, 4, 1),
    # experiments on _m128us: the producer's early next-unit lookup (_m128usp), the K-block loop unrolled by 2 (_m128usu2)
    "grouped_gemm1_swiglu_fp8_m128usp": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_fp8_m128usu2": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_fp8_m128usu4": (128, 256, 4, 1),  # unrolled by 4
    "grouped_gemm1_swiglu_fp8_m128usu2h": (128, 256, 4, 1),  # _m128usu2 with spill units (<= 64 rows) split along N
    "grouped_gemm2_fp8_m128uu2": (128, 256, 4, 1),  # _m128u (GEMM2) unrolled by 2
    # session 6: the production tiles claiming their units at run time (Tile::kDynamic; one more argument: a zeroed
    # uint32 work-counter pair)
    "grouped_gemm1_swiglu_bf16_d": (128, 256, 4, 1),
    "grouped_gemm2_bf16_d": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_fp8_m128usu2d": (128, 256, 4, 1),
    "grouped_gemm2_fp8_ud": (64, 256, 5, 1),
    # v6 (session 6): _m128usu2 whose producer gathers its A rows from the tokens quantized once (token map); _m128usu2g1
    # = v6 as first built (all producer threads poll the empty barrier, consumers fence), _m128usu2g = v6.1,
    # _m128usu2gd = v6.1 with dynamic units
    "grouped_gemm1_swiglu_fp8_m128usu2g": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_fp8_m128usu2g1": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_fp8_m128usu2gd": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_bf16_g": (128, 256, 4, 1),  # the BF16 GEMM1 tile gathering its rows (session 6, not yet run)
    # v8 (session 7, mcast7): _m128usu2d in 2-CTA clusters on pair units, the weight tile multicast (Tile::kPairB)
    "grouped_gemm1_swiglu_fp8_m128usu2dc": (128, 256, 4, 2),
    # its diagnostics: the same pairs without multicast (_m128usu2dcn), the release's two arrives from two lanes (_m128usu2dcl)
    "grouped_gemm1_swiglu_fp8_m128usu2dcn": (128, 256, 4, 2),
    "grouped_gemm1_swiglu_fp8_m128usu2dcl": (128, 256, 4, 2),
    # v10 (session 10, lead): the production FP8 tiles with the quarter-pipelined register-A mainloop (Tile::kQuarters)
    "grouped_gemm1_swiglu_fp8_m128usu2dq": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128uq_ybf16": (128, 256, 4, 1),
    # and with the halves loop as it is, A from registers (Tile::kRegAHalves)
    "grouped_gemm1_swiglu_fp8_m128usu2dr": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128ur_ybf16": (128, 256, 4, 1),
    # session 14 (lead): the 128-row GEMM2 tile with its former 4 stages (_m128u4; _m128u has 3 since), and with its
    # bf16 Y staged in shared memory and stored by one bulk copy per row (_m128uy; Tile kStagedStore 2)
    "grouped_gemm2_fp8_m128u4_ybf16": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128uy_ybf16": (128, 256, 3, 1),
    "grouped_gemm1_swiglu_fp8_m128usu2d3": (128, 256, 3, 1),  # the production GEMM1 tile _m128usu2d with 3 stages
    # GEMM1 on N pairs (Tile kPairN): 2-CTA clusters of 128 x 128-packed-row tiles, A multicast, DSMEM amax exchange
    "grouped_gemm1_swiglu_fp8_m128pn": (128, 128, 6, 2),
    # session 15 (lead): the production FP8 tiles with rolling 64-wide wgmma groups (Tile kRoll): every unit (w), only
    # units whose second warpgroup idles (ws)
    "grouped_gemm1_swiglu_fp8_m128usu2dw": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_fp8_m128usu2dws": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128uw_ybf16": (128, 256, 3, 1),
    # DeepGEMM's 128 x 192 tile shape for GEMM1 (Tile kWide): fp32 SwiGLU rows out, re-quantization left to another pass
    "grouped_gemm1_swiglu_fp8_w192": (128, 192, 5, 1),
    # session 16 (lead): the 128-row GEMM2 tile with units claimed at run time and decoded by the producer (kDynamic)
    "grouped_gemm2_fp8_m128ud": (128, 256, 3, 1),
    "grouped_gemm2_bf16_s16": (128, 256, 4, 1),  # the static BF16 GEMM2 before session 17 (next-unit lookup after the epilogue)
    "grouped_gemm1_swiglu_bf16_dc": (128, 256, 4, 2),  # session 17: the BF16 GEMM1 on 2-CTA pair units, weight tile multicast
    # session 17: the static GEMM1 tiles before their next-unit lookahead (FP8 also: carried descriptors)
    "grouped_gemm1_swiglu_fp8_m128usu2s16": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_bf16_s16": (128, 256, 4, 1),
    # session 18 (Tile kGroupOrder 1): the claiming (_dx) and static (_x) production tiles walking each expert's row
    # blocks in balanced chunks
    "grouped_gemm1_swiglu_fp8_m128usu2dx": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_fp8_m128usu2x": (128, 256, 4, 1),
    "grouped_gemm2_fp8_m128ux_ybf16": (128, 256, 3, 1),
    "grouped_gemm1_swiglu_bf16_dx": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_bf16_x": (128, 256, 4, 1),
    # session 18 (Tile kDynamic 2): the claiming tiles' producer hand-over with the static stride instead of the claim
    "grouped_gemm1_swiglu_fp8_m128usu2dh": (128, 256, 4, 1),
    "grouped_gemm1_swiglu_bf16_dh": (128, 256, 4, 1),
}
DYNAMIC = {"grouped_gemm1_swiglu_bf16_d", "grouped_gemm2_bf16_d", "grouped_gemm1_swiglu_fp8_m128usu2d", "grouped_gemm2_fp8_ud",
           "grouped_gemm1_swiglu_fp8_m128usu2gd", "grouped_gemm1_swiglu_fp8_m128usu2dc",
           "grouped_gemm1_swiglu_fp8_m128usu2dcn", "grouped_gemm1_swiglu_fp8_m128usu2dcl", "grouped_gemm1_swiglu_fp8_m128usu2dq",
           "grouped_gemm1_swiglu_fp8_m128usu2dr", "grouped_gemm1_swiglu_fp8_m128usu2d3", "grouped_gemm1_swiglu_fp8_m128usu2dw",
           "grouped_gemm1_swiglu_fp8_m128usu2dws", "grouped_gemm1_swiglu_fp8_w192", "grouped_gemm2_fp8_m128ud",
           "grouped_gemm1_swiglu_bf16_dc", "grouped_gemm1_swiglu_fp8_m128usu2dx", "grouped_gemm1_swiglu_bf16_dx",
           "grouped_gemm1_swiglu_fp8_m128usu2dh", "grouped_gemm1_swiglu_bf16_dh"}
# GEMM2's bf16-Y forms (the *_ybf16 entry points: the layer's default Y store, sparkmoe.gpu.expertOutputPrecision=auto):
# the same tiles, Y allocated as bf16 by gemm2_launcher
YBF16 = ("grouped_gemm2_bf16", "grouped_gemm2_bf16_n128", "grouped_gemm2_bf16_u", "grouped_gemm2_bf16_d", "grouped_gemm2_bf16_s16", "grouped_gemm2_fp8",
         "grouped_gemm2_fp8_n128", "grouped_gemm2_fp8_p32", "grouped_gemm2_fp8_u", "grouped_gemm2_fp8_ud",
         "grouped_gemm2_fp8_m128u", "grouped_gemm2_fp8_m128ud")
TILES.update({n + "_ybf16": TILES[n] for n in YBF16})
DYNAMIC |= {n + "_ybf16" for n in YBF16 if n in DYNAMIC}
# kernels that gather their A rows: arguments (A_tokens, A_tokens_scale, token_of_slot, W, ...), padding skip required
GATHER = ("grouped_gemm1_swiglu_fp8_m128usu2g", "grouped_gemm1_swiglu_fp8_m128usu2g1", "grouped_gemm1_swiglu_bf16_g",
          "grouped_gemm1_swiglu_fp8_m128usu2gd")
# kernels with the staged output buffers (Tile::OUT_STAGE_BYTES)
STAGED_OUT = {n: 2 * 64 * 128 for n in ("grouped_gemm1_swiglu_fp8_m128us", "grouped_gemm1_swiglu_fp8_m128usp",
                                        "grouped_gemm1_swiglu_fp8_m128usu2", "grouped_gemm1_swiglu_fp8_m128usu4",
                                        "grouped_gemm1_swiglu_fp8_m128usu2h", "grouped_gemm1_swiglu_fp8_m128usu2d",
                                        "grouped_gemm1_swiglu_fp8_m128usu2g", "grouped_gemm1_swiglu_fp8_m128usu2g1",
                                        "grouped_gemm1_swiglu_fp8_m128usu2gd", "grouped_gemm1_swiglu_fp8_m128usu2dc",
                                        "grouped_gemm1_swiglu_fp8_m128usu2dcn", "grouped_gemm1_swiglu_fp8_m128usu2dcl",
                                        "grouped_gemm1_swiglu_fp8_m128usu2dq", "grouped_gemm1_swiglu_fp8_m128usu2dr",
                                        "grouped_gemm1_swiglu_fp8_m128usu2d3", "grouped_gemm1_swiglu_fp8_m128usu2dw",
                                        "grouped_gemm1_swiglu_fp8_m128usu2dws", "grouped_gemm1_swiglu_fp8_m128usu2s16",
                                        "grouped_gemm1_swiglu_fp8_m128usu2dx", "grouped_gemm1_swiglu_fp8_m128usu2x",
                                        "grouped_gemm1_swiglu_fp8_m128usu2dh")}
# GEMM1 kernels writing fp32 SwiGLU rows [M, I] (no e4m3 re-quantization, no output scales)
WIDE = {"grouped_gemm1_swiglu_fp8_w192"}
# the N-pair tiles: Tile::EXCHANGE_BYTES holds one more mbarrier (16 bytes)
PAIR_N = {"grouped_gemm1_swiglu_fp8_m128pn"}
STAGED_OUT["grouped_gemm2_fp8_m128uy_ybf16"] = 2 * 64 * (256 * 2 + 16)  # bf16 Y rows padded by 16 bytes
# the FP8 variants the session-3 benches compare with the production kernel (suffixes)
V4 = ("pf", "pfs", "m128", "m128p", "m128s", "m128n128", "u", "m128u", "m128us", "m128usp", "m128usu2", "m128usu4", "m128uu2", "m128usu2h",
      "m128usu2d", "ud", "d", "m128usu2g", "m128usu2g1", "m128usu2gd", "g", "m128usu2dc",
      "m128usu2dcn", "m128usu2dcl", "u_ybf16", "m128u_ybf16", "m128usu2dq", "m128uq_ybf16", "m128usu2dr",
      "m128ur_ybf16", "m128u4_ybf16", "m128uy_ybf16", "m128usu2d3", "m128pn", "m128usu2dw", "m128uw_ybf16", "m128usu2dws", "w192",
      "m128ud_ybf16", "s16", "dc", "m128usu2s16", "m128usu2dx", "m128usu2x", "m128ux_ybf16", "dx", "x",
      "m128usu2dh", "dh")
GEMM2_ONLY = ("pfs", "m128n128", "m128uu2", "ud", "u_ybf16", "m128u_ybf16", "m128uq_ybf16", "m128ur_ybf16", "m128u4_ybf16",
              "m128ud_ybf16", "s16",
              "m128uy_ybf16", "m128uw_ybf16", "m128ux_ybf16")
BF16_VARIANTS = ("u", "d", "g", "s16", "dc", "dx", "x", "dh")  # V4 tags that also exist for the BF16 kernels
BF16_ONLY = ("d", "g", "s16", "dc", "dx", "x", "dh")
GEMM1_ONLY = ("m128us", "m128usp", "m128usu2", "m128usu4", "m128usu2h", "m128usu2d", "m128usu2g", "m128usu2g1", "m128usu2gd", "g",
              "m128usu2dc", "m128usu2dcn", "m128usu2dcl", "m128usu2dq", "m128usu2dr", "m128usu2d3", "m128pn", "m128usu2dw", "m128usu2dws", "w192", "dc", "m128usu2s16",
              "m128usu2dx", "m128usu2x", "dx", "x", "m128usu2dh", "dh")
CLUSTER_GRID = None  # CTAs of a persistent cluster launch (--cluster-grid / sweep; else each kernel's occupancy query)
DEV = torch.device("cuda")
warnings.filterwarnings("ignore", category=DeprecationWarning)  # cupy ExternalStream


def smem_bytes(name):
    bm, bn, st, cluster = TILES[name]
    table = 16384 if bm == 64 and cluster == 1 else 0  # live-unit table (padding skip), Tile::LIVE_TABLE_BYTES
    return (1024 + st * (bm * 128 + bn * 128 + 512) + 2 * st * 8 + 1024 + (16 if name in PAIR_N else 0) + table
            + STAGED_OUT.get(name, 0)
            + (512 if name in DYNAMIC else 0))  # Tile::UNIT_ID_BYTES


# ---------------------------------------------------------------- layouts (mirror grouped_gemm.cuh)
def swizzle_rows(t):
    """t: [..., R, 128] uint8 rows of one slab -> 16-byte chunk c of row r stored at c ^ (r % 8)."""
    R = t.shape[-2]
    v = t.reshape(*t.shape[:-1], 8, 16)
    r = torch.arange(R, device=t.device)[:, None]
    c = torch.arange(8, device=t.device)[None, :]
    src = c ^ (r % 8)  # position c holds chunk c ^ (r%8) (xor is an involution)
    idx = src[..., None].expand(R, 8, 16)
    idx = idx.expand(*v.shape)
    return torch.gather(v, -2, idx).reshape(t.shape)


def pack_activations(x_bytes):
    """x_bytes: [M, K*es] uint8 row-major (M % 128 == 0) -> activation layout bytes."""
    M, KB = x_bytes.shape
    v = x_bytes.reshape(M // 128, 128, KB // 128, 128).permute(0, 2, 1, 3).contiguous()  # [rb, slab, 128 rows, 128]
    return swizzle_rows(v).reshape(-1)


def unpack_activations(buf, M, KB):
    v = buf.reshape(M // 128, KB // 128, 128, 128)
    v = swizzle_rows(v)  # the swizzle is its own inverse
    return v.permute(0, 2, 1, 3).reshape(M, KB)


def pack_weights(w_bytes):
    """w_bytes: [G, R, K*es] uint8 -> [G][slab][R][128] swizzled by row % 8."""
    G, R, KB = w_bytes.shape
    v = w_bytes.reshape(G, R, KB // 128, 128).permute(0, 2, 1, 3).contiguous()
    return swizzle_rows(v).reshape(-1)


def w1_packed_order(I):
    p = torch.arange(2 * I)
    base = (p // 16) * 8 + p % 8
    return torch.where((p % 16) >= 8, I + base, base)


def act_scale_layout(scales_rows):
    """scales_rows: [M, K/128] fp32 -> [M/128][K/128][128]."""
    M, KB = scales_rows.shape
    return scales_rows.reshape(M // 128, 128, KB).permute(0, 2, 1).contiguous().reshape(-1)


def unpack_act_scales(buf, M, KB):
    return buf.reshape(M // 128, KB, 128).permute(0, 2, 1).reshape(M, KB)


def as_bytes(t):
    return t.contiguous().view(torch.uint8).reshape(*t.shape[:-1], -1)


# ---------------------------------------------------------------- FP8 recipe (common.md)
def quant_rows(x):
    """x fp32 [M, K] -> (e4m3 [M, K], scale [M, K/128]) per row per 128."""
    M, K = x.shape
    xb = x.reshape(M, K // 128, 128)
    amax = xb.abs().amax(-1)
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / 448.0)
    mult = torch.where(amax == 0, torch.zeros_like(amax), 448.0 / amax)
    q = (xb * mult[..., None]).clamp(-448, 448).to(torch.float8_e4m3fn).reshape(M, K)
    return q, scale.float()


def quant_blocks(w):
    """w fp32 [G, R, K] -> (e4m3, scale [G, R/128, K/128]) per 128x128 block."""
    G, R, K = w.shape
    wb = w.reshape(G, R // 128, 128, K // 128, 128)
    amax = wb.abs().amax(dim=(2, 4))
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / 448.0)
    mult = torch.where(amax == 0, torch.zeros_like(amax), 448.0 / amax)
    q = (wb * mult[:, :, None, :, None]).clamp(-448, 448).to(torch.float8_e4m3fn).reshape(G, R, K)
    return q, scale.float()


def dequant_rows(q, s):
    M, K = q.shape
    return (q.float().reshape(M, K // 128, 128) * s[..., None]).reshape(M, K)


def dequant_blocks(q, s):
    G, R, K = q.shape
    return (q.float().reshape(G, R // 128, 128, K // 128, 128) * s[:, :, None, :, None]).reshape(G, R, K)


# ---------------------------------------------------------------- problem setup
class Problem:
    """M-grouped contiguous layout for the given rows per expert (each padded to 128)."""

    def __init__(self, rows_per_expert, spare_blocks=0):
        self.rows = list(rows_per_expert)
        self.G = len(self.rows)
        blocks, starts, block_expert = 0, [], []
        for e, r in enumerate(self.rows):
            starts.append(blocks * 128)
            nb = (r + 127) // 128
            block_expert += [e] * nb
            blocks += nb
        self.starts = starts
        self.num_blocks = blocks
        self.max_blocks = blocks + spare_blocks
        self.M = self.max_blocks * 128  # buffers sized for the worst case
        be = block_expert + [0] * spare_blocks
        self.block_expert = torch.tensor(be, dtype=torch.int32, device=DEV)
        self.num_row_blocks = torch.tensor([blocks], dtype=torch.int32, device=DEV)
        real = torch.zeros(self.M, dtype=torch.bool)
        for s, r in zip(starts, self.rows):
            real[s:s + r] = True
        self.real = real.to(DEV)
        self.real_rows = sum(self.rows)
        # the dispatch's per-expert arrays: the GEMMs skip 64-row halves holding only padding (grouped_gemm.cu)
        self.expert_count = torch.tensor(self.rows, dtype=torch.int32, device=DEV)
        self.expert_start = torch.tensor(starts, dtype=torch.int32, device=DEV)
        self.skip_padding = True

    def real_rows_args(self):
        """The trailing (expert_count, expert_start) arguments; null pointers compute every row."""
        return (self.expert_count, self.expert_start) if self.skip_padding else (None, None)
        # expert of every row (padding rows of block b use block_expert[b])
        self.row_expert = self.block_expert.repeat_interleave(128).long()


def reference_gemm(a64, w64, prob):
    """a64 [M, K] float64, w64 [G, R, K] float64 -> [M, R] float64 for used blocks (rest zero)."""
    out = torch.zeros(prob.M, w64.shape[1], dtype=torch.float64, device=DEV)
    for b in range(prob.num_blocks):
        e = int(prob.block_expert[b])
        out[b * 128:(b + 1) * 128] = a64[b * 128:(b + 1) * 128] @ w64[e].T
    return out


def sampled_reference(a64, weight64_of, row_expert):
    """float64 [S, N] = a64[i] @ weight64_of(e(i)).T for sampled rows: a64 [S, K] float64 (the rows' values), row_expert
    [S] the expert of each row, weight64_of(e) the expert's [N, K] float64 weights (built one expert at a time: whole
    weight stacks in float64 do not fit)."""
    ref = None
    for e in torch.unique(row_expert).tolist():
        w64 = weight64_of(e)
        if ref is None:
            ref = torch.empty(a64.shape[0], w64.shape[0], dtype=torch.float64, device=DEV)
        sel = (row_expert == e).nonzero().flatten()
        ref[sel] = a64[sel] @ w64.T
        del w64
    return ref


def swiglu64(gu, I):
    g, u = gu[:, :I], gu[:, I:]
    return g / (1 + torch.exp(-g)) * u


def rel_err(out, ref):
    out = out.double()
    if not torch.isfinite(out).all():
        return float("inf")
    return (torch.linalg.norm(out - ref) / torch.linalg.norm(ref)).item()


# ---------------------------------------------------------------- launching
class Kernels:
    def __init__(self, path, legacy=False):
        self.mod = cp.RawModule(path=path)
        self.legacy = legacy  # a module built before the (expert_count, expert_start) arguments existed
        self.sms = torch.cuda.get_device_properties(0).multi_processor_count
        self.cache = {}
        self.cluster_caps = {}

    def cluster_cap(self, name):
        """CTAs of a persistent launch of cluster kernel `name`: 2 x cuOccupancyMaxActiveClusters (its own smem), else SMs."""
        if name not in self.cluster_caps:
            n = max_active_clusters(self, name)
            self.cluster_caps[name] = 2 * n if n else self.sms
        return self.cluster_caps[name]

    def fn(self, name):
        if name not in self.cache:
            f = self.mod.get_function(name)
            if not name.endswith("_ref"):
                f.max_dynamic_shared_size_bytes = smem_bytes(name)
            self.cache[name] = f
        return self.cache[name]

    def prepare(self, name, prob, args, n_out_cols, weight_rows):
        """Returns a no-argument function that enqueues the kernel (arguments converted once) on torch's stream."""
        if not self.legacy:
            args = tuple(args) + prob.real_rows_args()
        if name in DYNAMIC:  # the work-counter pair: zero at the first launch, left zero by every launch
            args = tuple(args) + (torch.zeros(2, dtype=torch.int32, device=DEV),)
        cargs = tuple(cp.asarray(a) if isinstance(a, torch.Tensor) else (np.uint64(0) if a is None else np.int32(a))
                      for a in args)
        stream = cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
        f = self.fn(name)
        if name.endswith("_ref"):
            grid, block, smem = (n_out_cols // 128, prob.max_blocks), (128,), 0
        else:
            bm, bn, _, cluster = TILES[name]
            units = prob.max_blocks * (128 // bm) * (weight_rows // bn)
            cap = (CLUSTER_GRID or self.cluster_cap(name)) if cluster > 1 else self.sms
            ctas = min(cap, units) // cluster * cluster  # clusters launch whole
            grid, block, smem = (max(cluster, ctas),), (FAST_THREADS,), smem_bytes(name)

        def go():
            with stream:
                f(grid, block, cargs, shared_mem=smem)
        return go


def random_weights(G, R, K, g, dtype):
    """[G, R, K] normal / sqrt(K), generated a few experts at a time (the big shapes hold 15 GB of bf16)."""
    w = torch.empty(G, R, K, dtype=dtype, device=DEV)
    step = max(1, (1 << 28) // (R * K))
    for i in range(0, G, step):
        w[i:i + step] = (torch.randn(min(step, G - i), R, K, device=DEV, generator=g) / math.sqrt(K)).to(dtype)
    return w


def make_operands(prob, K, R, fp8, seed, w_order=None, need_ref=True):
    """Random A [M, K] and W [G, R, K] in our layouts (W rows permuted by w_order), plus the reference operands
    (float64 of exactly what the kernel sees) and the peers' row-major operands."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    x = torch.randn(prob.M, K, device=DEV, generator=g)
    d = {"K": K}
    if fp8:
        xq, xs = quant_rows(x)
        del x
        w = random_weights(prob.G, R, K, g, torch.bfloat16)
        wq = torch.empty(prob.G, R, K, dtype=torch.float8_e4m3fn, device=DEV)
        ws = torch.empty(prob.G, R // 128, K // 128, device=DEV)
        step = max(1, (1 << 27) // (R * K))
        for i in range(0, prob.G, step):
            wq[i:i + step], ws[i:i + step] = quant_blocks(w[i:i + step].float())
        del w
        d["A"] = pack_activations(as_bytes(xq))
        d["A_scale"] = act_scale_layout(xs)
        # + 192 rows x 128 bytes of slack: a ragged last N tile (WIDE) reads past the last expert's weight rows
        d["W"] = torch.cat([pack_weights(as_bytes(wq if w_order is None else wq[:, w_order])),
                            torch.zeros(192 * 128, dtype=torch.uint8, device=DEV)])
        d["W_scale"] = ws.contiguous().reshape(-1)
        if need_ref:
            d["a64"], d["w64"] = dequant_rows(xq, xs).double(), dequant_blocks(wq, ws).double()
        d["peer"] = (xq, xs, wq, ws)
    else:
        xb = x.bfloat16()
        del x
        wb = random_weights(prob.G, R, K, g, torch.bfloat16)
        d["A"] = pack_activations(as_bytes(xb))
        d["W"] = pack_weights(as_bytes(wb if w_order is None else wb[:, w_order]))
        if need_ref:
            d["a64"], d["w64"] = xb.double(), wb.double()
        d["peer"] = (xb, wb)
    return d


def make_gemm1(prob, K, I, fp8, seed, need_ref=True):
    d = make_operands(prob, K, 2 * I, fp8, seed, w1_packed_order(I).to(DEV), need_ref)
    d["I"] = I
    return d


def make_gemm2(prob, K, N, fp8, seed, need_ref=True):
    d = make_operands(prob, K, N, fp8, seed, None, need_ref)
    d["N"] = N
    d["row_weight"] = torch.rand(prob.M, device=DEV) + 0.1
    return d


def gatherize(d, prob, tokens, seed, need_ref=True):
    """For the gathering GEMM1s (GATHER): `tokens` tokens quantized (FP8) or converted (BF16) ONCE (rows = tokens,
    padded to 128; the pad rows poisoned with NaN bytes (e4m3 0x7F / bf16 0xFFFF) and, FP8, NaN scales, so a read of
    them fails the check) and a slot -> token map (each expert's real rows: distinct tokens in increasing order, as the
    dispatch assigns them; padding rows -1). The dispatched A of the other kernels (d["A"], d["A_scale"]) and the
    reference rows are rebuilt as exactly those token rows (padding rows zero, as the dispatch's pad kernel writes
    them), so every kernel computes the same product."""
    K = d["K"]
    fp8 = "A_scale" in d
    g = torch.Generator(device=DEV).manual_seed(seed + 7)
    rng = np.random.default_rng(seed + 7)
    t_pad = (tokens + 127) // 128 * 128
    x = torch.randn(t_pad, K, device=DEV, generator=g)
    if fp8:
        xq, xs = quant_rows(x)
    else:
        xq, xs = x.bfloat16(), None
    tok = np.full(prob.M, -1, dtype=np.int32)
    for st, r in zip(prob.starts, prob.rows):
        if r:
            tok[st:st + r] = np.sort(rng.choice(tokens, size=r, replace=False))
    d["token_of_slot"] = torch.from_numpy(tok).to(DEV)
    qb = as_bytes(xq).clone()
    qb[tokens:] = 0x7F if fp8 else 0xFF  # NaN: never read
    d["A_tokens"] = pack_activations(qb)
    idx = torch.from_numpy(np.maximum(tok, 0)).long().to(DEV)
    real = prob.real[:, None]
    aq = torch.where(real, as_bytes(xq)[idx], torch.zeros((), dtype=torch.uint8, device=DEV))
    d["A"] = pack_activations(aq)
    if fp8:
        sc = xs.clone()
        sc[tokens:] = float("nan")
        d["A_tokens_scale"] = act_scale_layout(sc)
        asc = torch.where(real, xs[idx], torch.zeros((), device=DEV))
        d["A_scale"] = act_scale_layout(asc)
    if need_ref:
        d["a64"] = dequant_rows(aq.view(torch.float8_e4m3fn), asc).double() if fp8 else aq.view(torch.bfloat16).double()
    return d


def gemm1_launcher(ks, name, prob, d, fp8):
    """Poisoned outputs and a prepared launch of GEMM1; returns (launch, hout, hout_scale)."""
    I, K = d["I"], d["K"]
    es = 4 if name in WIDE else 1 if fp8 else 2
    hout = torch.full((prob.M * I * es,), 0xFF, dtype=torch.uint8, device=DEV)  # NaN in fp32, bf16 and e4m3
    if fp8:
        hs = torch.full((prob.M * (I // 128),), float("nan"), device=DEV)
        if name in GATHER:
            args = (d["A_tokens"], d["A_tokens_scale"], d["token_of_slot"], d["W"], d["W_scale"], hout, hs, prob.block_expert,
                    prob.num_row_blocks, prob.max_blocks, K, I)
        else:
            args = (d["A"], d["A_scale"], d["W"], d["W_scale"], hout, hs, prob.block_expert, prob.num_row_blocks, prob.max_blocks, K, I)
    elif name in GATHER:
        hs = None
        args = (d["A_tokens"], d["token_of_slot"], d["W"], hout, prob.block_expert, prob.num_row_blocks, prob.max_blocks, K, I)
    else:
        hs = None
        args = (d["A"], d["W"], hout, prob.block_expert, prob.num_row_blocks, prob.max_blocks, K, I)
    return ks.prepare(name, prob, args, I, 2 * I), hout, hs


def gemm1_output(prob, d, hout, hs, fp8):
    I = d["I"]
    if fp8:
        q = unpack_activations(hout, prob.M, I).view(torch.float8_e4m3fn)
        s = unpack_act_scales(hs, prob.M, I // 128)
        return dequant_rows(q, s), q, s
    return unpack_activations(hout, prob.M, 2 * I).view(torch.bfloat16).float(), None, None


def gemm2_launcher(ks, name, prob, d, fp8):
    N, K = d["N"], d["K"]
    y = torch.full((prob.M, N), float("nan"), device=DEV, dtype=torch.bfloat16 if name.endswith("_ybf16") else torch.float32)
    if fp8:
        args = (d["A"], d["A_scale"], d["W"], d["W_scale"], y, d["row_weight"], prob.block_expert, prob.num_row_blocks, prob.max_blocks, K, N)
    else:
        args = (d["A"], d["W"], y, d["row_weight"], prob.block_expert, prob.num_row_blocks, prob.max_blocks, K, N)
    return ks.prepare(name, prob, args, N, N), y


def check_gemm1(ks, name, prob, K, I, fp8, seed):
    d = make_gemm1(prob, K, I, fp8, seed)
    if name in GATHER:
        gatherize(d, prob, max(max(prob.rows), 1) + 61, seed)  # tokens: the largest expert's rows + some never picked
        res_extra = {"gather_tokens": max(max(prob.rows), 1) + 61}
    else:
        res_extra = {}
    go, hout, hs = gemm1_launcher(ks, name, prob, d, fp8)
    go()
    first = hout.clone()
    go()  # bitwise repeatability: same inputs, second launch
    torch.cuda.synchronize()
    ref_gu = reference_gemm(d["a64"], d["w64"], prob)
    ref_h = swiglu64(ref_gu, I)
    real = prob.real
    res = {"kernel": name, "rows": prob.rows, "K": K, "N": I, "bitwise_repeat": bool(torch.equal(first, hout)), **res_extra}
    if name in WIDE:
        # fp32 SwiGLU rows: only the tensor cores' accumulation separates them from the float64 reference
        out = hout.view(torch.float32).reshape(prob.M, I)
        res["err"] = rel_err(out[real], ref_h[real])
        res["ok"] = res["err"] < 1e-3 and res["bitwise_repeat"]
        return res
    out, q, s = gemm1_output(prob, d, hout, hs, fp8)
    if fp8:
        # the same recipe applied to the float64 reference (rounded to fp32 first, like the kernel's SwiGLU)
        rq, rs = quant_rows(ref_h.float())
        ref_q = dequant_rows(rq, rs).double()
        res["err_vs_requantized_ref"] = rel_err(out[real], ref_q[real])
        res["err_vs_exact_h"] = rel_err(out[real], ref_h[real])
        res["scale_err"] = rel_err(s[real], rs[real].double())
        # e4m3 codes as signed magnitudes: an accumulation difference may move a value across a rounding boundary
        # (one code step), never further
        def signed(c):
            c = c.view(torch.uint8).int()
            return torch.where(c >= 128, -(c - 128), c)
        dist = (signed(q[real]) - signed(rq[real])).abs()
        res["code_flip_fraction"] = (dist > 0).float().mean().item()
        res["max_code_distance"] = int(dist.max().item())
        # element bound: one e4m3 step (<= |v|/8) away from the re-quantized reference, or within 1e-3 of the
        # row block's amax (values near zero, where the accumulation's absolute error can change sign or binade)
        o, r = out[real], ref_q[real]
        amax_rows = (s[real].double() * 448.0).repeat_interleave(128, dim=1)
        bound = 0.126 * torch.maximum(o.abs(), r.abs()) + 1e-3 * amax_rows
        res["elements_off_bound"] = int(((o - r).abs() > bound).sum().item())
        res["ok"] = (res["elements_off_bound"] == 0 and res["scale_err"] < 1e-3 and res["err_vs_requantized_ref"] < 1e-2
                     and res["bitwise_repeat"])
    else:
        res["err"] = rel_err(out[real], ref_h[real])
        res["ok"] = res["err"] < 1e-2 and res["bitwise_repeat"]
    return res


def check_gemm2(ks, name, prob, K, N, fp8, seed):
    d = make_gemm2(prob, K, N, fp8, seed)
    go, y = gemm2_launcher(ks, name, prob, d, fp8)
    go()
    y_first = y.clone()
    go()  # bitwise repeatability: same inputs, second launch
    torch.cuda.synchronize()
    ref = reference_gemm(d["a64"], d["w64"], prob) * d["row_weight"].double()[:, None]
    real = prob.real
    res = {"kernel": name, "rows": prob.rows, "K": K, "N": N, "err": rel_err(y[real], ref[real])}
    res["bitwise_repeat"] = bool(torch.equal(y_first[real], y[real]))
    # bf16 Y adds its rounding (RMS ~1.1e-3 of each value) to the accumulation error
    res["ok"] = res["err"] < (2e-3 if fp8 else 1e-2) * (2 if name.endswith("_ybf16") else 1) and res["bitwise_repeat"]
    return res


def cmd_check(ks, args):
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"check seed {seed}")
    # ragged experts: an empty expert, partial blocks (padding rows), two spare row blocks (surplus CTAs / units)
    # fills of the last blocks: 72 (second half live), 37 / 44 (second half skipped), 64 (boundary: skipped)
    ragged = [200, 0, 128, 37, 300, 64]
    results = []
    names = args.kernels.split(",") if args.kernels else list(TILES) + [n + "_ref" for n in
                                                                         ("grouped_gemm1_swiglu_bf16", "grouped_gemm2_bf16", "grouped_gemm1_swiglu_fp8", "grouped_gemm2_fp8")]
    for name in names:
        base = name.replace("_ref", "")
        fp8 = "fp8" in base
        prob = Problem(ragged, spare_blocks=2)
        t0 = time.time()
        try:
            if "gemm1" in base:
                r = check_gemm1(ks, name, prob, 512, 256, fp8, seed)
            else:
                n = 384 if base.endswith("n128") else 512  # N % 256 != 0 for the _n128 forms
                r = check_gemm2(ks, name, prob, 256, n, fp8, seed)
        except Exception as ex:  # report and go on to the next kernel
            r = {"kernel": name, "ok": False, "error": repr(ex)}
        r["seconds"] = round(time.time() - t0, 2)
        print(json.dumps(r), flush=True)
        results.append(r)
    # the production kernels again without the padding skip (null expert_count / expert_start); with --kernels: those
    picked = names if args.kernels else None
    for name in picked or ("grouped_gemm1_swiglu_bf16", "grouped_gemm2_bf16", "grouped_gemm1_swiglu_fp8", "grouped_gemm2_fp8",
                 "grouped_gemm2_fp8_n128", "grouped_gemm1_swiglu_fp8_m128", "grouped_gemm2_fp8_m128",
                 "grouped_gemm2_fp8_m128n128", "grouped_gemm1_swiglu_fp8_pf", "grouped_gemm2_fp8_pf",
                 "grouped_gemm1_swiglu_fp8_m128p", "grouped_gemm2_fp8_m128p", "grouped_gemm1_swiglu_fp8_m128s",
                 "grouped_gemm2_fp8_m128s", "grouped_gemm2_fp8_pfs", "grouped_gemm1_swiglu_fp8_m128u",
                 "grouped_gemm2_fp8_m128u", "grouped_gemm1_swiglu_fp8_u", "grouped_gemm2_fp8_u", "grouped_gemm1_swiglu_fp8_m128us"):
        if name.endswith("_ref") or name in GATHER:  # the gathering kernels need the padding skip's counts
            continue
        fp8 = "fp8" in name
        prob = Problem(ragged, spare_blocks=2)
        prob.skip_padding = False
        try:
            if "gemm1" in name:
                r = check_gemm1(ks, name, prob, 512, 256, fp8, seed + 2)
            else:
                r = check_gemm2(ks, name, prob, 256, 384 if name.endswith("n128") else 512, fp8, seed + 2)
        except Exception as ex:
            r = {"kernel": name, "ok": False, "error": repr(ex)}
        r["no_skip"] = True
        print(json.dumps(r), flush=True)
        results.append(r)
    # one larger case per fast kernel with many K blocks and several units per CTA (pipeline wrap-around)
    for name in picked or ("grouped_gemm1_swiglu_bf16", "grouped_gemm1_swiglu_fp8", "grouped_gemm1_swiglu_fp8_nooverlap",
                 "grouped_gemm1_swiglu_fp8_cluster", "grouped_gemm1_swiglu_fp8_p32", "grouped_gemm2_bf16",
                 "grouped_gemm2_fp8", "grouped_gemm2_fp8_n128", "grouped_gemm2_fp8_p32",
                 "grouped_gemm1_swiglu_fp8_early", "grouped_gemm2_fp8_early", "grouped_gemm1_swiglu_fp8_lookahead",
                 "grouped_gemm2_fp8_lookahead", "grouped_gemm1_swiglu_fp8_m128", "grouped_gemm2_fp8_m128",
                 "grouped_gemm2_fp8_m128n128", "grouped_gemm1_swiglu_fp8_pf", "grouped_gemm2_fp8_pf",
                 "grouped_gemm1_swiglu_fp8_m128p", "grouped_gemm2_fp8_m128p", "grouped_gemm1_swiglu_fp8_m128s",
                 "grouped_gemm2_fp8_m128s", "grouped_gemm2_fp8_pfs", "grouped_gemm1_swiglu_fp8_m128u",
                 "grouped_gemm2_fp8_m128u", "grouped_gemm1_swiglu_fp8_u", "grouped_gemm2_fp8_u", "grouped_gemm1_swiglu_fp8_m128us"):
        if name.endswith("_ref"):
            continue
        fp8 = "fp8" in name
        prob = Problem([1000, 1500, 0, 4000, 700, 128, 2900], spare_blocks=3)
        try:
            r = check_gemm1(ks, name, prob, 2048, 768, fp8, seed + 1) if "gemm1" in name else check_gemm2(ks, name, prob, 1536, 2048, fp8, seed + 1)
        except Exception as ex:
            r = {"kernel": name, "ok": False, "error": repr(ex)}
        r["large"] = True
        print(json.dumps(r), flush=True)
        results.append(r)
    return results


# ---------------------------------------------------------------- timing
def flush_l2(buf):
    buf.add_(1)


def time_fn(fn, runs, flush):
    """Median/min/max ms of fn over `runs` runs, the L2 flushed before each; all runs are enqueued back to back
    (no host synchronization in between), so host launch latency stays out of the events."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ev = []
    for _ in range(runs):
        flush_l2(flush)
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        ev.append((s, e))
    torch.cuda.synchronize()
    ts = [s.elapsed_time(e) for s, e in ev]
    return statistics.median(ts), min(ts), max(ts)


def time_fns(fns, runs, flush):
    """{name: (median, min, max) ms} of several no-argument functions timed INTERLEAVED: run r times every function
    once, the order rotated by r, the L2 flushed before each. Timing them one after another favoured whichever ran
    first: the H200 runs these kernels at its power limit, and its clock falls during tens of ms of back-to-back
    FP8 GEMMs (session 3: the same kernel measured second lost up to 12 %; ncu showed 1.58 vs 1.69 GHz between two
    tiles). All runs are enqueued back to back (no host synchronization in between)."""
    names = list(fns)
    for n in names:
        for _ in range(3):
            fns[n]()
    torch.cuda.synchronize()
    ev = {n: [] for n in names}
    for r in range(runs):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            flush_l2(flush)
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fns[n]()
            e.record()
            ev[n].append((s, e))
    torch.cuda.synchronize()
    out = {}
    for n in names:
        ts = [s.elapsed_time(e) for s, e in ev[n]]
        out[n] = (statistics.median(ts), min(ts), max(ts))
    return out


def timed(res, fns, runs, flush, flops, sequential):
    """Times fns (interleaved unless sequential) into res[name] = {ms, min, max, tflops}."""
    if sequential:
        times = {n: time_fn(f, runs, flush) for n, f in fns.items()}
    else:
        times = time_fns(fns, runs, flush) if fns else {}
    for n, (med, lo, hi) in times.items():
        res[n] = {"ms": round(med, 4), "min": round(lo, 4), "max": round(hi, 4), "tflops": round(flops / med / 1e9, 1)}


def probe_torch():
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0)}
    for fname in ("_grouped_mm", "_scaled_grouped_mm", "_scaled_mm"):
        f = getattr(torch, fname, None)
        info[fname] = (f.__doc__ or "present").split("\n")[0] if f is not None else None
    return info


def peer_bf16(xb, wb, offs):
    return lambda: torch._grouped_mm(xb, wb.transpose(-2, -1), offs=offs, out_dtype=torch.bfloat16)


def peer_fp8(xq, xs_row, wq, ws_col, offs):
    return lambda: torch._scaled_grouped_mm(xq, wq.transpose(-2, -1), xs_row, ws_col, offs=offs, out_dtype=torch.bfloat16, use_fast_accum=True)


SHAPES = [
    ("DeepSeek-V3 EP8 gate+up", 32, 128, 4096, 7168, "gemm1"),
    ("DeepSeek-V3 EP8 gate+up", 32, 512, 4096, 7168, "gemm1"),
    ("DeepSeek-V3 EP8 gate+up", 32, 2048, 4096, 7168, "gemm1"),
    ("DeepSeek-V3 EP8 down", 32, 512, 7168, 2048, "gemm2"),
    ("DeepSeek-V3 all experts gate+up", 256, 128, 4096, 7168, "gemm1"),
    ("Qwen3-30B-A3B gate+up", 128, 256, 1536, 2048, "gemm1"),
    ("Mixtral-8x7B gate+up", 8, 1024, 28672, 4096, "gemm1"),
]
# DeepSeek-V3 routed GEMMs of a whole layer (256 experts, top-8): rows per expert drawn like uniform routing
# (multinomial of tokens*8 over 256 experts, fixed seed), so every expert's last block is partly padding.
LAYER_SHAPES = [
    ("DeepSeek-V3 layer gate+up", 4096, 4096, 7168, "gemm1"),
    ("DeepSeek-V3 layer down", 4096, 7168, 2048, "gemm2"),
    ("DeepSeek-V3 layer gate+up", 16384, 4096, 7168, "gemm1"),
    ("DeepSeek-V3 layer down", 16384, 7168, 2048, "gemm2"),
    ("DeepSeek-V3 layer gate+up", 1024, 4096, 7168, "gemm1"),  # ~32 rows per expert: mostly half-idle 128-row units
    # Mixtral-8x7B (8 experts, top-2; session 18): 8-9 row blocks per expert at 4096 tokens, the last one partial
    ("Mixtral layer gate+up", 4096, 28672, 4096, "gemm1", 8, 2),
    ("Mixtral layer down", 4096, 4096, 14336, "gemm2", 8, 2),
    ("Mixtral layer gate+up", 32768, 28672, 4096, "gemm1", 8, 2),
]
DEEPGEMM = {0: 701, 1: 1214, 2: 1214, 3: 1151, 4: 635, 5: 902, 6: 1300}
TORCH_FP8_TABLE = {0: 325, 1: 799, 2: 1143, 3: 723, 4: 620, 5: 714, 6: 969}
TORCH_BF16_TABLE = {0: 394, 1: 562, 2: 639, 3: 585, 4: 284, 5: 467, 6: 626}


def max_active_clusters(ks, name):
    """cuOccupancyMaxActiveClusters for a __cluster_dims__(2) kernel (cuda-python), or None with the reason printed."""
    try:
        from cuda.bindings import driver as cu
        f = ks.fn(name)
        ptr = f.kernel.ptr if hasattr(f, "kernel") else f._kernel.ptr
        cfg = cu.CUlaunchConfig()
        cfg.gridDimX, cfg.gridDimY, cfg.gridDimZ = ks.sms, 1, 1
        cfg.blockDimX, cfg.blockDimY, cfg.blockDimZ = FAST_THREADS, 1, 1
        cfg.sharedMemBytes = smem_bytes(name)
        cfg.numAttrs = 0
        err, n = cu.cuOccupancyMaxActiveClusters(cu.CUfunction(ptr), cfg)
        print(f"occupancy {name}: {err} max active clusters {n}", flush=True)
        return int(n) if int(err) == 0 else None
    except Exception as ex:
        print(f"occupancy query failed: {ex!r}", flush=True)
        return None


def cmd_sweep(ks, args):
    """Times the cluster kernel on one shape for several persistent grid sizes."""
    global CLUSTER_GRID
    label, G, rows, N, K, kind = SHAPES[1]
    prob = Problem([rows] * G)
    flops = 2.0 * prob.real_rows * N * K
    flush = torch.empty(64 * 1024 * 1024, dtype=torch.float32, device=DEV)
    d = make_gemm1(prob, K, N // 2, True, 1234, need_ref=False)
    out = []
    for g in [132, 130, 128, 126, 124, 120, 116, 112, 100, 66]:
        CLUSTER_GRID = g
        go = gemm1_launcher(ks, "grouped_gemm1_swiglu_fp8_cluster", prob, d, True)[0]
        med, lo, hi = time_fn(go, 10, flush)
        r = {"grid": g, "ms": round(med, 4), "tflops": round(flops / med / 1e9, 1)}
        print(json.dumps(r), flush=True)
        out.append(r)
    CLUSTER_GRID = None
    return out


def cmd_profile(ks, args):
    """One launch of each named kernel on the DeepSeek-V3 EP8 32 x 512 shapes (for ncu)."""
    for name in args.kernels.split(","):
        kind = "gemm1" if "gemm1" in name else "gemm2"
        label, G, rows, N, K, _ = SHAPES[1] if kind == "gemm1" else SHAPES[3]
        prob = Problem([rows] * G)
        fp8 = "fp8" in name
        d = make_gemm1(prob, K, N // 2, fp8, 7, need_ref=False) if kind == "gemm1" else make_gemm2(prob, K, N, fp8, 7, need_ref=False)
        go = (gemm1_launcher if kind == "gemm1" else gemm2_launcher)(ks, name, prob, d, fp8)[0]
        go()
        torch.cuda.synchronize()
        print("profiled", name, flush=True)
        del d
    return []


def cmd_bench(ks, args):
    runs = args.runs
    flush = torch.empty(64 * 1024 * 1024, dtype=torch.float32, device=DEV)  # 256 MB > 60 MB L2
    base = baseline_module(args)
    rows_out = []
    sel = [int(i) for i in args.shapes.split(",")] if args.shapes else range(len(SHAPES))
    for si in sel:
        label, G, rows, N, K, kind = SHAPES[si]
        prob = Problem([rows] * G)
        flops = 2.0 * prob.real_rows * N * K
        offs = torch.tensor([rows * (i + 1) for i in range(G)], dtype=torch.int32, device=DEV)
        res = {"shape": f"{label}, {G} x {rows}, {N}, {K}", "idx": si}
        for fp8 in ((True,) if args.fp8_only else (False,) if args.bf16_only else (True, False)):
            seed = int.from_bytes(os.urandom(4), "little")
            tag = "fp8" if fp8 else "bf16"
            if kind == "gemm1":
                d = make_gemm1(prob, K, N // 2, fp8, seed, need_ref=False)
                names = ["grouped_gemm1_swiglu_fp8"] + ["grouped_gemm1_swiglu_fp8_" + v for v in V4 if v not in GEMM2_ONLY + BF16_ONLY and "grouped_gemm1_swiglu_fp8_" + v not in GATHER] + ["grouped_gemm1_swiglu_fp8_lookahead", "grouped_gemm1_swiglu_fp8_early", "grouped_gemm1_swiglu_fp8_nooverlap",
                         "grouped_gemm1_swiglu_fp8_cluster", "grouped_gemm1_swiglu_fp8_p32"] if fp8 else ["grouped_gemm1_swiglu_bf16", "grouped_gemm1_swiglu_bf16_u",
                                                                                     "grouped_gemm1_swiglu_bf16_d", "grouped_gemm1_swiglu_bf16_dc", "grouped_gemm1_swiglu_bf16_s16"]
            else:
                d = make_gemm2(prob, K, N, fp8, seed, need_ref=False)
                names = ["grouped_gemm2_fp8"] + ["grouped_gemm2_fp8_" + v for v in V4 if v not in GEMM1_ONLY + BF16_ONLY] + ["grouped_gemm2_fp8_lookahead", "grouped_gemm2_fp8_early", "grouped_gemm2_fp8_n128", "grouped_gemm2_fp8_p32"] if fp8 else (["grouped_gemm2_bf16", "grouped_gemm2_bf16_u", "grouped_gemm2_bf16_ybf16", "grouped_gemm2_bf16_s16", "grouped_gemm2_bf16_s16_ybf16"] if N % 256 == 0 else ["grouped_gemm2_bf16_n128"])
            fns = {}
            for name in names:
                if args.skip and name in args.skip.split(","):
                    continue
                try:
                    fns[name] = (gemm1_launcher if kind == "gemm1" else gemm2_launcher)(ks, name, prob, d, fp8)[0]
                except Exception as ex:
                    res[name] = {"error": repr(ex)[:300]}
            for bname in baseline_names(args, base, names[0], kind, fp8):  # an earlier module's kernels, same operands
                try:
                    fns["baseline " + bname] = (gemm1_launcher if kind == "gemm1" else gemm2_launcher)(base, bname, prob, d, fp8)[0]
                except Exception as ex:
                    res["baseline " + bname] = {"error": repr(ex)[:300]}
            try:
                timed(res, fns, runs, flush, flops, args.sequential)
            except Exception as ex:
                res["timing"] = {"error": repr(ex)[:300]}
            # torch peers on the same values, plain row-major operands (timing peers: their numerics are not checked)
            try:
                if args.no_peers:
                    raise RuntimeError("skipped (--no-peers)")
                if fp8:
                    xq, xs, wq, ws = d["peer"]
                    # rowwise scales: per row of A, per output column of W (from our block scales; the codes are ours)
                    fn = peer_fp8(xq[:prob.real_rows].contiguous(), xs[:prob.real_rows].amax(-1).contiguous(), wq,
                                  ws.amax(-1).repeat_interleave(128, dim=1).contiguous(), offs)
                    name = "torch._scaled_grouped_mm rowwise"
                else:
                    xb, wb = d["peer"]
                    fn = peer_bf16(xb[:prob.real_rows].contiguous(), wb, offs)
                    name = "torch._grouped_mm bf16"
                med, lo, hi = time_fn(fn, runs, flush)
                res[name] = {"ms": round(med, 4), "tflops": round(flops / med / 1e9, 1)}
            except Exception as ex:
                res["torch " + tag] = {"error": repr(ex)[:300]}
            del d
            torch.cuda.empty_cache()
        print(json.dumps(res), flush=True)
        rows_out.append(res)
    return rows_out


def baseline_module(args):
    """--baseline: an earlier module; with --baseline-kernels its kernels take today's arguments, else it is a module
    from before the (expert_count, expert_start) arguments (sessions 1-2) whose production kernel is timed."""
    return Kernels(args.baseline, legacy=not args.baseline_kernels) if args.baseline else None


def baseline_names(args, base, default, kind, fp8):
    """The kernels of the --baseline module to time beside ours: --baseline-kernels (those of this GEMM and operand
    type), else the production kernel `default`."""
    if base is None:
        return []
    if not args.baseline_kernels:
        return [default] if default else []
    names = [n for n in args.baseline_kernels.split(",") if n]
    return [n for n in names if n.startswith("grouped_gemm1" if kind == "gemm1" else "grouped_gemm2") and ("_fp8" in n) == fp8]


def layer_rows(tokens, experts=256, top_k=8, seed=20261128):
    return [int(c) for c in np.random.default_rng(seed + tokens).multinomial(tokens * top_k, [1.0 / experts] * experts)]


def cmd_layer(ks, args):
    """The layer-like ragged shapes: production kernels with and without the padding skip, and (--baseline) the
    production kernel of an earlier module, on the same operands in the same process; FP8 and BF16."""
    runs = args.runs
    flush = torch.empty(64 * 1024 * 1024, dtype=torch.float32, device=DEV)
    base = baseline_module(args)
    out = []
    sel = [int(i) for i in args.shapes.split(",")] if args.shapes else range(len(LAYER_SHAPES))  # --shapes: indices
    for label, tokens, N, K, kind, *experts_top_k in (LAYER_SHAPES[i] for i in sel):
        prob = Problem(layer_rows(tokens, *experts_top_k))
        flops = 2.0 * prob.real_rows * N * K
        res = {"shape": f"{label}, {tokens} tokens ({prob.num_blocks} blocks, {prob.real_rows} rows), {N}, {K}"}
        for fp8 in ((True, False) if tokens <= 4096 and not args.fp8_only else (True,)):
            seed = int.from_bytes(os.urandom(4), "little")
            d = make_gemm1(prob, K, N // 2, fp8, seed, need_ref=False) if kind == "gemm1" else make_gemm2(prob, K, N, fp8, seed, need_ref=False)
            gather_tags = {n.rsplit("_", 1)[-1] for n in GATHER if ("fp8" in n) == fp8}
            if kind == "gemm1" and not gather_tags <= set(args.skip.split(",")):
                gatherize(d, prob, tokens, seed, need_ref=False)  # all kernels then read the same token rows
            name = ("grouped_gemm1_swiglu_" if kind == "gemm1" else "grouped_gemm2_") + ("fp8" if fp8 else "bf16")
            launcher = gemm1_launcher if kind == "gemm1" else gemm2_launcher
            fns = {}
            for tag, mod, skip in (("skip", ks, True), ("noskip", ks, False)) + tuple((v, ks, True) for v in V4) + (
                                   ("lookahead", ks, True), ("baseline", base if not args.baseline_kernels else None, False)):
                if mod is None or (tag not in ("skip", "noskip", "baseline") + BF16_VARIANTS and not fp8):
                    continue
                if (tag in GEMM2_ONLY and kind == "gemm1") or (tag in GEMM1_ONLY and kind == "gemm2") or (tag in BF16_ONLY and fp8):
                    continue
                if args.skip and tag in args.skip.split(","):
                    continue
                prob.skip_padding = skip  # read when the launcher converts its arguments (now)
                try:
                    kname = name + "_" + tag if tag in ("lookahead",) + V4 else name
                    fns[f"{name} {tag}"] = launcher(mod, kname, prob, d, fp8)[0]
                except Exception as ex:
                    res[f"{name} {tag}"] = {"error": repr(ex)[:300]}
            prob.skip_padding = True
            for bname in baseline_names(args, base, None, kind, fp8):  # (--baseline-kernels only: no default here)
                try:  # (with the padding skip, as the engine launches them)
                    fns[f"baseline {bname}"] = launcher(base, bname, prob, d, fp8)[0]
                except Exception as ex:
                    res[f"baseline {bname}"] = {"error": repr(ex)[:300]}
            try:
                timed(res, fns, runs, flush, flops, args.sequential)
            except Exception as ex:
                res["timing"] = {"error": repr(ex)[:300]}
            del d
            torch.cuda.empty_cache()
        print(json.dumps(res), flush=True)
        out.append(res)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["check", "bench", "layer", "probe", "sweep", "profile"])
    ap.add_argument("--baseline", default="", help="bench/layer: also time the production kernels of this earlier module")
    ap.add_argument("--baseline-kernels", default="",
                    help="bench/layer: the --baseline module's kernels to time (comma-separated; the module then takes "
                         "today's kernel arguments)")
    ap.add_argument("--no-peers", action="store_true", help="bench: skip the torch peers")
    ap.add_argument("--fp8-only", action="store_true", help="bench/layer: FP8 kernels only")
    ap.add_argument("--bf16-only", action="store_true", help="bench: BF16 kernels only")
    ap.add_argument("--cluster-grid", type=int, default=0, help="CTAs of persistent cluster launches (0: occupancy query)")
    ap.add_argument("--module", required=True)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sequential", action="store_true",
                    help="bench/layer: time the kernels one after another (sessions 1-3) instead of interleaved")
    ap.add_argument("--kernels", default="")
    ap.add_argument("--shapes", default="")
    ap.add_argument("--skip", default="", help="bench: kernel names to leave out; layer: tags (noskip, m128, lookahead, ...)")
    args = ap.parse_args()
    info = probe_torch()
    print(json.dumps(info), flush=True)
    if args.cmd == "probe":
        return
    ks = Kernels(args.module)
    global CLUSTER_GRID
    if args.cluster_grid:
        CLUSTER_GRID = args.cluster_grid
    # else each cluster kernel's launches use its own occupancy query (Kernels.cluster_cap)
    print(f"cluster grid {CLUSTER_GRID}", flush=True)
    out = {"check": cmd_check, "bench": cmd_bench, "layer": cmd_layer, "sweep": cmd_sweep, "profile": cmd_profile}[args.cmd](ks, args)
    with open(os.path.join(args.out, f"gemm_{args.cmd}.json"), "w") as f:
        json.dump({"info": info, "results": out}, f, indent=1)
    if args.cmd in ("sweep", "profile"):
        return
    def tf(r, k):
        return r.get(k, {}).get("tflops", 0.0)

    if args.cmd == "check":
        bad = [r["kernel"] for r in out if not r.get("ok")]
        print("CHECK", "FAILED: " + ",".join(bad) if bad else "all passed")
    elif args.cmd == "layer":
        tags = ("skip", "noskip") + V4 + ("lookahead", "baseline")
        print(f"{'shape (TFLOPS of real rows)':78s} {'kernel':26s} " + " ".join(f"{t:>8s}" for t in tags))
        for r in out:
            for k in sorted({k.rsplit(' ', 1)[0] for k in r if k.startswith("grouped_gemm")}):
                print(f"{r['shape']:78s} {k:26s} " + " ".join(f"{tf(r, k + ' ' + t):8.1f}" for t in tags))
    else:
        # production kernels only (the variants are in the JSON)
        print(f"{'shape':58s} {'v3.3 fp8':>9s} " + " ".join(f"{v:>8s}" for v in V4) + f" {'torch fp8':>9s} {'DeepGEMM':>8s} {'v3.3/DG':>7s} {'best/DG':>7s}")
        for r in out:
            i = r["idx"]
            f8 = tf(r, "grouped_gemm1_swiglu_fp8") or tf(r, "grouped_gemm2_fp8")
            b8 = tf(r, "baseline grouped_gemm1_swiglu_fp8") or tf(r, "baseline grouped_gemm2_fp8")
            l8 = tf(r, "grouped_gemm1_swiglu_fp8_lookahead") or tf(r, "grouped_gemm2_fp8_lookahead")
            vs = [tf(r, "grouped_gemm1_swiglu_fp8_" + v) or tf(r, "grouped_gemm2_fp8_" + v) for v in V4]
            b16 = tf(r, "grouped_gemm1_swiglu_bf16") or tf(r, "grouped_gemm2_bf16") or tf(r, "grouped_gemm2_bf16_n128")
            tf8, tb16 = tf(r, "torch._scaled_grouped_mm rowwise"), tf(r, "torch._grouped_mm bf16")
            best = max([f8] + vs)
            print(f"{r['shape']:58s} {f8:9.1f} " + " ".join(f"{v:8.1f}" for v in vs) + f" {tf8:9.1f} {DEEPGEMM[i]:8d} {f8 / DEEPGEMM[i]:7.2f} {best / DEEPGEMM[i]:7.2f}")


if __name__ == "__main__":
    main()
