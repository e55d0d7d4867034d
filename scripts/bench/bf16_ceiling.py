#!/usr/bin/env python3
"""How fast can a BF16 Mixtral-8x7B layer be on this GPU? The expert GEMMs of the layer, timed side by side with every
BF16 GEMM we can run on the host, to put issue 3's BF16 bar (layers at >= 1.5x the torch BF16 pipeline) against the
GPU's own ceiling.

Per token count T (top-2 over 8 experts, uniform: 8 groups of T/4 rows, every block full - the best case for every
kernel), two GEMMs: gate+up (N = 2 x 14336, K = 4096) and down (N = 4096, K = 14336), bf16 operands, fp32
accumulation, bf16 output. Timed interleaved with the L2 flushed before every run (gemm_bench.time_fns: CUDA events,
3 warm-up runs each, median of --runs):
  - ours: the engine's GEMM1 (`grouped_gemm1_swiglu_bf16_d`: claims its units, SwiGLU fused, I columns out) and its
    static form; the engine's GEMM2 (`grouped_gemm2_bf16_ybf16`) - for the gate+up shape also as a plain GEMM of all
    2I columns (no SwiGLU: the peers' work);
  - torch._grouped_mm (CUTLASS grouped GEMM: what scripts/bench/torch_moe_layer.py's BF16 pipeline runs);
  - DeepGEMM's m-grouped contiguous BF16 GEMM (`m_grouped_bf16_gemm_nt_contiguous`, --dg-path; a peer, never a
    dependency);
  - torch.mm (cuBLAS): all T*2 rows against ONE expert's weight, the same FLOPs as one dense GEMM - no grouping, the
    weight tile shared by every row block: an upper bound for any grouped kernel of this size.
Every output is checked on sampled rows against a float64 product of the same bf16 values (ours through SwiGLU in
float64) before it is timed; a kernel that fails the check (||out-ref||/||ref|| > 1e-2, or unwritten NaN rows) is
reported as failed, not timed.

Last, the zero-glue bound: the fastest gate+up plus the fastest down of each T, as a layer that does nothing else,
against --peer-ms (the torch BF16 pipeline's layer time, measured by `moe bench --peer` in the same call) / 1.5.
Results: OUT/bf16_ceiling.jsonl (one line per GEMM), a table printed last.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemm_bench as gb  # noqa: E402  (layouts, launchers, L2 flush, interleaved timing)

DEV = torch.device("cuda")
H, I, E, TOP_K = 4096, 14336, 8, 2
GEMM1 = ("grouped_gemm1_swiglu_bf16_d", "grouped_gemm1_swiglu_bf16")
GEMM2 = "grouped_gemm2_bf16_ybf16"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def checked(res, name, out, ref, fns, fn):
    """Records name's error on the sampled rows; only a correct kernel is timed."""
    err = gb.rel_err(out, ref)
    res[name + " err"] = err
    if err <= 1e-2:
        fns[name] = fn
    else:
        res[name] = {"error": f"failed the check: {err:.3g} from float64"}
        log(f"{name}: FAILED the check ({err:.3g})")


def measure(dg, ks, tokens, gemm, args):
    rows = tokens * TOP_K // E
    prob = gb.Problem([rows] * E)
    M = prob.num_blocks * 128
    N, K = (2 * I, H) if gemm == "gate+up" else (H, I)
    flops = 2.0 * prob.real_rows * N * K
    seed = int.from_bytes(os.urandom(4), "little")
    res = {"tokens": tokens, "gemm": gemm, "shape": f"{E} x {rows}, N {N}, K {K}", "seed": seed}
    d = gb.make_gemm1(prob, K, I, False, seed, need_ref=False) if gemm == "gate+up" else \
        gb.make_gemm2(prob, K, N, False, seed, need_ref=False)
    xb, wb = d["peer"]  # row-major bf16 [M, K] and [E, N, K] (gate rows, then up rows), natural order
    g = torch.Generator(device="cpu").manual_seed(seed)
    rows_s = torch.randperm(prob.real_rows, generator=g)[:args.sample].sort().values.to(DEV)
    row_expert = prob.block_expert[:prob.num_blocks].repeat_interleave(128).long()
    ref = gb.sampled_reference(xb[rows_s].double(), lambda e: wb[e].double(), row_expert[rows_s])
    fns = {}
    if gemm == "gate+up":
        ref_h = gb.swiglu64(ref, I)
        for name in GEMM1:
            go, hout, _ = gb.gemm1_launcher(ks, name, prob, d, False)
            go()
            torch.cuda.synchronize()
            h = gb.gemm1_output(prob, d, hout, None, False)[0]
            checked(res, name, h[rows_s], ref_h, fns, go)
            del h
        # the plain GEMM of all 2I columns through the engine's GEMM2 (the weights' packed row order: column j of its
        # output is natural row order[j]; the row weight 1)
        d["N"], d["row_weight"] = N, torch.ones(prob.M, device=DEV)
        order = gb.w1_packed_order(I).to(DEV)
        go, y = gb.gemm2_launcher(ks, GEMM2, prob, d, False)
        go()
        torch.cuda.synchronize()
        checked(res, GEMM2 + " (plain, all 2I columns)", y[rows_s], ref[:, order], fns, go)
    else:
        go, y = gb.gemm2_launcher(ks, GEMM2, prob, d, False)
        go()
        torch.cuda.synchronize()
        checked(res, GEMM2, y[rows_s], ref * d["row_weight"][rows_s].double()[:, None], fns, go)
    offs = torch.tensor([rows * (i + 1) for i in range(E)], dtype=torch.int32, device=DEV)
    xr = xb[:prob.real_rows].contiguous()
    out_t = gb.peer_bf16(xr, wb, offs)()
    torch.cuda.synchronize()
    checked(res, "torch._grouped_mm", out_t[rows_s], ref, fns, gb.peer_bf16(xr, wb, offs))
    del out_t
    if dg is not None:
        try:
            layout = prob.block_expert[:prob.num_blocks].repeat_interleave(128).to(torch.int32).contiguous()
            out_d = torch.full((M, N), float("nan"), dtype=torch.bfloat16, device=DEV)
            a = xb[:M].contiguous()
            t0 = time.time()
            dg.m_grouped_bf16_gemm_nt_contiguous(a, wb, out_d, layout)
            torch.cuda.synchronize()
            res["dg_first_call_s"] = round(time.time() - t0, 2)
            checked(res, "DeepGEMM m_grouped_bf16", out_d[rows_s], ref, fns,
                    lambda: dg.m_grouped_bf16_gemm_nt_contiguous(a, wb, out_d, layout))
        except Exception as ex:
            res["DeepGEMM m_grouped_bf16"] = {"error": repr(ex)[:400]}
            log(f"DeepGEMM failed: {ex!r}"[:500])
    # cuBLAS dense: every row against expert 0's weight (same FLOPs); checked on the sampled rows against that product
    w0t = wb[0].T
    out_c = torch.mm(xr, w0t)
    torch.cuda.synchronize()
    checked(res, "torch.mm dense (cuBLAS)", out_c[rows_s], xr[rows_s].double() @ wb[0].double().T, fns,
            lambda: torch.mm(xr, w0t, out=out_c))
    del ref
    flush = torch.empty(64 * 1024 * 1024, dtype=torch.float32, device=DEV)  # 256 MB > 60 MB L2
    gb.timed(res, fns, args.runs, flush, flops, False)
    del d, fns, flush
    torch.cuda.empty_cache()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--module", required=True, help="our fatbin (moe_kernels.fatbin)")
    ap.add_argument("--dg-path", default="", help="DeepGEMM's built source tree (omit: no DeepGEMM)")
    ap.add_argument("--tokens", default="4096,32768")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sample", type=int, default=256, help="rows checked against float64")
    ap.add_argument("--peer-ms", default="", help="T=ms,... the torch BF16 pipeline's Mixtral layer (moe bench --peer)")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    print(json.dumps(gb.probe_torch()), flush=True)
    dg = None
    if args.dg_path:
        sys.path.insert(0, args.dg_path)
        import deep_gemm as dg
    ks = gb.Kernels(args.module)
    peer = {int(k): float(v) for k, v in (p.split("=") for p in args.peer_ms.split(",") if p)}
    results = []
    with open(os.path.join(args.out, "bf16_ceiling.jsonl"), "a") as f:
        for t in [int(x) for x in args.tokens.split(",")]:
            for gemm in ("gate+up", "down"):
                r = measure(dg, ks, t, gemm, args)
                f.write(json.dumps(r) + "\n")
                f.flush()
                results.append(r)
                log(f"RESULT T={t} {gemm}: " + ", ".join(f"{k} {v['tflops']}" for k, v in r.items()
                                                         if isinstance(v, dict) and "tflops" in v))
    print(f"\n{'T':>6s} {'GEMM':8s} {'kernel':44s} {'ms':>8s} {'TFLOPS':>7s}")
    for r in results:
        for k, v in sorted(((k, v) for k, v in r.items() if isinstance(v, dict) and "tflops" in v), key=lambda kv: kv[1]["ms"]):
            print(f"{r['tokens']:6d} {r['gemm']:8s} {k:44s} {v['ms']:8.3f} {v['tflops']:7.1f}")
    for t in sorted({r["tokens"] for r in results}):
        best = {}
        for r in results:
            if r["tokens"] != t:
                continue
            # the grouped kernels only (the dense cuBLAS line is the bound, not a layer's GEMM)
            cands = {k: v for k, v in r.items() if isinstance(v, dict) and "ms" in v and not k.startswith("torch.mm")}
            k = min(cands, key=lambda n: cands[n]["ms"]) if cands else None
            best[r["gemm"]] = (k, cands[k]["ms"]) if k else (None, float("nan"))
            dense = r.get("torch.mm dense (cuBLAS)", {}).get("ms", float("nan"))
            best[r["gemm"] + " dense"] = dense
        zero_glue = best["gate+up"][1] + best["down"][1]
        dense = best["gate+up dense"] + best["down dense"]
        line = (f"T={t}: fastest grouped gate+up {best['gate+up'][0]} {best['gate+up'][1]:.3f} ms + down {best['down'][0]} "
                f"{best['down'][1]:.3f} ms = {zero_glue:.3f} ms with no glue at all; cuBLAS dense bound {dense:.3f} ms")
        if t in peer:
            line += (f"; the bar (torch BF16 pipeline {peer[t]:.3f} ms / 1.5) = {peer[t] / 1.5:.3f} ms -> the zero-glue layer "
                     f"would be {peer[t] / zero_glue:.2f}x the peer, the dense bound {peer[t] / dense:.2f}x")
        print(line)


if __name__ == "__main__":
    main()
