#!/usr/bin/env python3
"""DeepGEMM's m-grouped contiguous FP8 GEMM side by side with our FP8 grouped GEMMs, in one process, on the issue's
seven grouped-GEMM shapes (gemm_bench.SHAPES; issue 3 item 6).

DeepGEMM is a peer we measure against, never a dependency: it is built on the GPU host from a source bundle
(.gpuwork-dg/call.sh) and imported from --dg-path. Our kernels are loaded from the fatbin through gemm_bench.py
(imported as a module: same layouts, launchers, L2 flush and interleaved timing).

Per shape (DeepSeek recipe: e4m3 operands, fp32 scales per row per 128 of K for A, per 128x128 block for W):
  - one set of operands (gemm_bench.make_gemm1 / make_gemm2): xq [M, K] e4m3 + xs [M, K/128], wq [G, N, K] e4m3 +
    ws [G, N/128, K/128]; our kernels read their packed copies, DeepGEMM reads these row-major tensors:
    a = (xq, xs transformed once to DeepGEMM's MN-major TMA-aligned layout), b = (wq, ws), grouped_layout = expert
    index per row (int32, every row real: all shapes have multiples of 128 rows per expert), d = bf16 [M, N];
  - DeepGEMM's first call timed by wall clock (its JIT compile if the kernel is not in DG_JIT_CACHE_DIR yet);
  - correctness of every kernel on a random sample of rows against a float64 product of the same e4m3 values and
    scales: DeepGEMM's bf16 D and our GEMM2's fp32 output (x routing weight) as ||out-ref||/||ref||; our GEMM1
    (fused SwiGLU + per-128 re-quantization) against the recipe applied to the float64 gate/up product;
  - the FP8 recipe's intermediate on the gate+up shapes (issue 3's 2e-3 accuracy bar): DeepGEMM's D taken through
    SwiGLU and the per-128 e4m3 re-quantization here, our fused GEMM1's codes, and the exact product rounded to bf16
    (a control), each against the recipe on the float64 product - e4m3 codes moved, the intermediate's error, and that
    error after a random float64 down projection (what reaches a layer's output);
  - timing: CUDA events, 3 warm-up runs each, median of --runs runs, a 256 MB write flushes the L2 before every run,
    all kernels of a shape interleaved (gemm_bench.time_fns: run r times each kernel once, order rotated);
    TFLOPS = 2*M*N*K over real rows (N = gate+up rows for GEMM1).
Per-shape results go to OUT/dg_side_by_side.jsonl as they complete; a table is printed last.

--warm-only: only call DeepGEMM once per shape on zero operands of the same shapes (fills the JIT cache; run one
process per shape in parallel before the measuring process).
--plain: the gate+up shapes as plain grouped GEMMs with all 2I output columns, run by our GEMM2 kernels (bf16 output
times the row weight, no SwiGLU or re-quantization: DeepGEMM's own work) - the like-for-like comparison; without it
the gate+up shapes run our fused GEMM1 (SwiGLU and e4m3 re-quantization in its epilogue), the engine's kernel.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEV = torch.device("cuda")
# our kernels timed beside DeepGEMM, production first (GroupedGemmConfig.choose with the engine's defaults: GEMM1 claims
# its units, GEMM2 stores bf16 Y - as DeepGEMM stores its bf16 D - on the 128-row tile where row blocks are mostly full,
# as on these shapes), then siblings: the static GEMM1, the 64-row GEMM2 with bf16 and with fp32 Y (what sessions 3-7
# timed here as "production")
OURS = {"gemm1": ["grouped_gemm1_swiglu_fp8_m128usu2d", "grouped_gemm1_swiglu_fp8_m128usu2"],
        "gemm2": ["grouped_gemm2_fp8_m128u_ybf16", "grouped_gemm2_fp8_u_ybf16", "grouped_gemm2_fp8_u"]}
# --baseline: the kernels of an earlier module timed beside them (--baseline-kernels; default: the production pair)
BASELINE = {"gemm1": ["grouped_gemm1_swiglu_fp8_m128usu2d"], "gemm2": ["grouped_gemm2_fp8_m128u_ybf16"]}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def import_deepgemm(path):
    if path:
        sys.path.insert(0, path)
    t0 = time.time()
    import deep_gemm
    log(f"deep_gemm {getattr(deep_gemm, '__version__', '?')} imported from {getattr(deep_gemm, '__file__', '?')} "
        f"in {time.time() - t0:.1f} s")
    return deep_gemm


def shape_list(arg):
    import gemm_bench as gb
    return [int(i) for i in arg.split(",")] if arg else list(range(len(gb.SHAPES)))


def m_indices(prob):
    return prob.block_expert[:prob.num_blocks].repeat_interleave(128).to(torch.int32).contiguous()


def dg_fn(dg, name, c_name=None):
    """A DeepGEMM function by its package name, else from its extension module (a build that registers only the GEMM,
    layout and runtime APIs leaves the package's optional imports out)."""
    f = getattr(dg, name, None)
    return f if f is not None else getattr(dg._C, c_name or name)


def dg_call(dg, a, b, out, layout):
    # m-grouped contiguous FP8 GEMM, NT: D[M, N] = A[M, K] @ B[g(m), N, K]^T, SM90 1D2D kernel with fp32 scales
    dg_fn(dg, "m_grouped_fp8_gemm_nt_contiguous", "m_grouped_fp8_fp4_gemm_nt_contiguous")(
        a, b, out, layout, disable_ue8m0_cast=True)


def warm(dg, shapes):
    """DeepGEMM once per shape on zero operands (JIT only)."""
    import gemm_bench as gb
    for si in shapes:
        label, G, rows, N, K, kind = gb.SHAPES[si]
        prob = gb.Problem([rows] * G)
        M = prob.num_blocks * 128
        xq = torch.zeros(M, K, dtype=torch.uint8, device=DEV).view(torch.float8_e4m3fn)
        xs = torch.ones(M, K // 128, device=DEV)
        wq = torch.zeros(G, N, K, dtype=torch.uint8, device=DEV).view(torch.float8_e4m3fn)
        ws = torch.ones(G, N // 128, K // 128, device=DEV)
        out = torch.empty(M, N, dtype=torch.bfloat16, device=DEV)
        t0 = time.time()
        dg_call(dg, (xq, xs), (wq, ws), out, m_indices(prob))
        torch.cuda.synchronize()
        log(f"WARM shape {si} ({label}, {G} x {rows}, {N}, {K}): first DeepGEMM call {time.time() - t0:.1f} s")
        del xq, xs, wq, ws, out
        torch.cuda.empty_cache()


def sample_reference(gb, xq, xs, wq, ws, rows, row_expert):
    """float64 [S, N] = dequant(xq[rows]) @ dequant(wq[e(row)]).T for the sampled rows."""
    xr = xq.view(torch.uint8)[rows].view(torch.float8_e4m3fn)  # index the bytes: fp8 indexing is not needed
    return gb.sampled_reference(gb.dequant_rows(xr, xs[rows]).double(),
                                lambda e: gb.dequant_blocks(wq[e:e + 1], ws[e:e + 1])[0].double(), row_expert[rows])


def recipe_reference(gb, ref, I):
    """The FP8 recipe applied to the float64 gate/up product ref [S, 2I]: (SwiGLU in float64, its e4m3 codes per row per
    128 - rounded to fp32 first, like the kernels' SwiGLU - and their dequantized values in float64)."""
    ref_h = gb.swiglu64(ref, I)
    rq, rs = gb.quant_rows(ref_h.float())
    return ref_h, rq, gb.dequant_rows(rq, rs).double()


def recipe_figures(gb, res, name, gate_up, h_q, recipe, I, proj):
    """The FP8 recipe's intermediate from one GEMM1 (issue 3's 2e-3 bar is on the layer after it) against the recipe
    applied to the float64 product (recipe: recipe_reference's triple): SwiGLU, then e4m3 per row per 128 with fp32
    scales. Either gate_up ([S, 2I] float64 output of a plain GEMM: DeepGEMM's bf16 D, the recipe applied here) or h_q
    ((dequantized values, e4m3 codes) of our fused kernel). Records the fraction of e4m3 codes that differ from the
    recipe's, ||H-Href||/||Href|| and the same error after a random float64 projection (proj: [I, P]) - what a down
    GEMM would carry into the layer's output."""
    _, rq, ref_q = recipe
    if h_q is None:
        q, s = gb.quant_rows(gb.swiglu64(gate_up, I).float())
        h = gb.dequant_rows(q, s).double()
    else:
        h, q = h_q
    moved = (q.view(torch.uint8) != rq.view(torch.uint8)).float().mean().item()
    res[name + " recipe"] = {"codes_moved": moved, "err_h": gb.rel_err(h, ref_q),
                             "err_after_down": gb.rel_err(h @ proj, ref_q @ proj)}


def measure(dg, ks, si, args, out_f, base=None):
    import gemm_bench as gb
    label, G, rows, N, K, kind = gb.SHAPES[si]
    # --plain: every shape as a plain grouped GEMM (our GEMM2 kernels, bf16 output as DeepGEMM's D, no SwiGLU), the
    # gate+up shapes with their N = 2 x I output columns
    plain = args.plain and kind == "gemm1"
    if args.plain:
        kind = "gemm2"
    prob = gb.Problem([rows] * G)
    M = prob.num_blocks * 128
    flops = 2.0 * prob.real_rows * N * K
    res = {"idx": si, "shape": f"{label}{' (plain GEMM)' if plain else ''}, {G} x {rows}, {N}, {K}", "kind": kind, "M": M,
           "deepgemm_issue_table": gb.DEEPGEMM[si], "torch_fp8_issue_table": gb.TORCH_FP8_TABLE[si]}
    seed = int.from_bytes(os.urandom(4), "little")
    res["seed"] = seed
    t0 = time.time()
    d = gb.make_gemm1(prob, K, N // 2, True, seed, need_ref=False) if kind == "gemm1" else \
        gb.make_gemm2(prob, K, N, True, seed, need_ref=False)
    xq, xs, wq, ws = d["peer"]
    torch.cuda.synchronize()
    res["operands_s"] = round(time.time() - t0, 1)

    # sampled rows and their float64 reference (same e4m3 values and scales every kernel reads)
    g = torch.Generator(device="cpu").manual_seed(seed)
    rows_s = torch.randperm(prob.real_rows, generator=g)[:args.sample].sort().values.to(DEV)
    row_expert = m_indices(prob).long()
    ref = sample_reference(gb, xq, xs, wq, ws, rows_s, row_expert)
    # a random float64 down projection (P output channels) carries GEMM1's recipe error to a layer-like output
    proj = torch.randn(N // 2, 1024, dtype=torch.float64, device=DEV, generator=torch.Generator(device=DEV).manual_seed(seed)) \
        if kind == "gemm1" else None
    recipe = recipe_reference(gb, ref, N // 2) if kind == "gemm1" else None
    if kind == "gemm1":
        # control: the exact product rounded to bf16 (DeepGEMM's D type) before the recipe
        recipe_figures(gb, res, "exact product rounded to bf16", ref.bfloat16().double(), None, recipe, N // 2, proj)

    fns = {}
    # ---- DeepGEMM
    if dg is not None:
        try:
            layout = m_indices(prob)
            t0 = time.time()
            sfa = dg_fn(dg, "get_mn_major_tma_aligned_tensor")(xs[:M].contiguous())  # once, outside the timed call
            torch.cuda.synchronize()
            res["dg_sfa_transform_first_s"] = round(time.time() - t0, 2)
            out = torch.full((M, N), float("nan"), dtype=torch.bfloat16, device=DEV)
            a, b = (xq[:M].contiguous(), sfa), (wq, ws)
            t0 = time.time()
            dg_call(dg, a, b, out, layout)
            torch.cuda.synchronize()
            res["dg_first_call_s"] = round(time.time() - t0, 2)
            first = out.clone()
            out.fill_(float("nan"))
            dg_call(dg, a, b, out, layout)
            torch.cuda.synchronize()
            res["dg_err"] = gb.rel_err(out[rows_s].float(), ref)
            if kind == "gemm1":
                recipe_figures(gb, res, "DeepGEMM", out[rows_s].double(), None, recipe, N // 2, proj)
            res["dg_bitwise_repeat"] = bool(torch.equal(first, out))
            res["dg_all_finite"] = bool(torch.isfinite(out).all().item())
            del first
            # host time of one call (enqueue only): must stay well below the GPU time of flush + GEMM, or the
            # interleaved event timing would include host gaps
            t0 = time.perf_counter()
            for _ in range(20):
                dg_call(dg, a, b, out, layout)
            res["dg_host_us_per_call"] = round((time.perf_counter() - t0) / 20 * 1e6, 1)
            torch.cuda.synchronize()
            fns["DeepGEMM"] = lambda: dg_call(dg, a, b, out, layout)
        except Exception as ex:
            res["DeepGEMM"] = {"error": repr(ex)[:400]}
            log(f"shape {si}: DeepGEMM failed: {ex!r}"[:500])
    # ---- ours
    # (--baseline: the earlier module's kernels of this GEMM, named "baseline <kernel>", checked and timed the same way)
    ours = [(ks, name, name) for name in OURS[kind]] if ks is not None else []
    ours += [(base, name, "baseline " + name) for name in BASELINE[kind]] if base is not None else []
    for mod, kname, name in ours:
        try:
            if kind == "gemm1":
                go, hout, hs = gb.gemm1_launcher(mod, kname, prob, d, True)
                go()
                torch.cuda.synchronize()
                I = N // 2
                if kname in gb.WIDE:  # fp32 SwiGLU rows, not re-quantized
                    h, q, s = hout.view(torch.float32).reshape(prob.M, I), None, None
                else:
                    h, q, s = gb.gemm1_output(prob, d, hout, hs, True)
                ref_h, _, ref_q = recipe
                res[name + " err_vs_requantized_ref"] = gb.rel_err(h[rows_s], ref_q)
                res[name + " err_vs_exact_h"] = gb.rel_err(h[rows_s], ref_h)
                if q is not None:
                    recipe_figures(gb, res, name, None, (h[rows_s].double(), q.view(torch.uint8)[rows_s]), recipe, I, proj)
                del h, q, s
            else:
                go, y = gb.gemm2_launcher(mod, kname, prob, d, True)
                go()
                torch.cuda.synchronize()
                res[name + " err"] = gb.rel_err(y[rows_s], ref * d["row_weight"][rows_s].double()[:, None])
            fns[name] = go
        except Exception as ex:
            res[name] = {"error": repr(ex)[:400]}
            log(f"shape {si}: {name} failed: {ex!r}"[:500])
    # ---- torch FP8 rowwise (as gemm_bench's peer: per-row / per-output-column scales from the same codes)
    if not args.no_torch:
        try:
            offs = torch.tensor([rows * (i + 1) for i in range(G)], dtype=torch.int32, device=DEV)
            fns["torch._scaled_grouped_mm rowwise"] = gb.peer_fp8(
                xq[:prob.real_rows].contiguous(), xs[:prob.real_rows].amax(-1).contiguous(), wq,
                ws.amax(-1).repeat_interleave(128, dim=1).contiguous(), offs)
        except Exception as ex:
            res["torch._scaled_grouped_mm rowwise"] = {"error": repr(ex)[:400]}
    del ref
    flush = torch.empty(64 * 1024 * 1024, dtype=torch.float32, device=DEV)  # 256 MB > 60 MB L2
    try:
        t0 = time.time()
        gb.timed(res, fns, args.runs, flush, flops, False)
        res["timing_s"] = round(time.time() - t0, 1)
    except Exception as ex:
        res["timing"] = {"error": repr(ex)[:400]}
    del d, fns, flush
    torch.cuda.empty_cache()
    out_f.write(json.dumps(res) + "\n")
    out_f.flush()
    tf = {k: v.get("tflops") for k, v in res.items() if isinstance(v, dict) and "tflops" in v}
    log(f"RESULT shape {si} {res['shape']}: " + ", ".join(f"{k} {v}" for k, v in tf.items())
        + f"; DeepGEMM err {res.get('dg_err')}, first call {res.get('dg_first_call_s')} s")
    return res


def profile(dg, ks, shapes, kernels):
    """One launch each of DeepGEMM and the named kernels of ours per shape, for ncu (--kernel-name filters the
    profiled launches; DeepGEMM's scale transform and torch's fills run too but are not profiled)."""
    import gemm_bench as gb
    for si in shapes:
        label, G, rows, N, K, kind = gb.SHAPES[si]
        prob = gb.Problem([rows] * G)
        M = prob.num_blocks * 128
        d = gb.make_gemm1(prob, K, N // 2, True, 7 + si, need_ref=False) if kind == "gemm1" else \
            gb.make_gemm2(prob, K, N, True, 7 + si, need_ref=False)
        if dg is not None:
            xq, xs, wq, ws = d["peer"]
            sfa = dg_fn(dg, "get_mn_major_tma_aligned_tensor")(xs[:M].contiguous())
            out = torch.empty((M, N), dtype=torch.bfloat16, device=DEV)
            dg_call(dg, (xq[:M].contiguous(), sfa), (wq, ws), out, m_indices(prob))
            torch.cuda.synchronize()
            log(f"profiled DeepGEMM shape {si}")
            del out, sfa
        if ks is not None:
            for name in kernels:
                if ("gemm1" in name) != (kind == "gemm1"):
                    continue
                launcher = gb.gemm1_launcher if kind == "gemm1" else gb.gemm2_launcher
                launcher(ks, name, prob, d, True)[0]()
                torch.cuda.synchronize()
                log(f"profiled {name} shape {si}")
        del d
        torch.cuda.empty_cache()


def table(results):
    """TFLOPS per shape: DeepGEMM, each of our kernels (suffix of the name; production first), torch; then ratios."""
    def tf(r, k):
        v = r.get(k)
        return v.get("tflops", 0.0) if isinstance(v, dict) else 0.0
    lines = []
    for r in results:
        kind = r["kind"]
        dgv = tf(r, "DeepGEMM")
        ours = [(n.split("_fp8")[-1] or "_64row", tf(r, n)) for n in OURS[kind]]
        best = max(v for _, v in ours) if ours else 0.0  # of this module's kernels only
        ours += [("base" + n.split("_fp8")[-1], tf(r, "baseline " + n)) for n in BASELINE[kind] if "baseline " + n in r]
        err = r.get("dg_err")
        lines.append(f"{r['shape']:52s} DG {dgv:7.1f} | " + " ".join(f"{k} {v:7.1f}" for k, v in ours)
                     + f" | torch {tf(r, 'torch._scaled_grouped_mm rowwise'):7.1f} | prod/DG "
                     + (f"{ours[0][1] / dgv:5.2f} best/DG {best / dgv:5.2f}" if dgv else "-")
                     + f" | DG err {(f'{err:.1e}' if isinstance(err, float) else '-')}")
        for k, v in r.items():
            if k.endswith(" recipe"):
                lines.append(f"    FP8 recipe after GEMM1, {k[:-7]}: {100 * v['codes_moved']:.2f} % of e4m3 codes moved, "
                             f"H {v['err_h']:.2e}, after a float64 down projection {v['err_after_down']:.2e}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dg-path", default=os.environ.get("DG_PATH", ""), help="folder holding the built deep_gemm package")
    ap.add_argument("--module", default="", help="our grouped_gemm fatbin (empty: DeepGEMM only)")
    ap.add_argument("--shapes", default="", help="indices into gemm_bench.SHAPES (default: all 7)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sample", type=int, default=64, help="rows checked against the float64 reference per shape")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--jsonl", default="dg_side_by_side.jsonl", help="per-shape results file under --out")
    ap.add_argument("--warm-only", action="store_true")
    ap.add_argument("--no-dg", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--profile", action="store_true", help="one launch per kernel and shape (run under ncu)")
    ap.add_argument("--kernels", default="", help="--profile: our kernels to launch (comma-separated; default OURS)")
    ap.add_argument("--ours", default="", help="gemm1 kernels;gemm2 kernels (comma-separated, production first): replaces OURS")
    ap.add_argument("--baseline", default="", help="an earlier fatbin whose kernels (--baseline-kernels) are timed beside ours")
    ap.add_argument("--baseline-kernels", default="", help="gemm1 kernels;gemm2 kernels of --baseline: replaces BASELINE")
    ap.add_argument("--plain", action="store_true",
                    help="time the gate+up shapes as plain grouped GEMMs too: our GEMM2 kernels (bf16 output, no SwiGLU "
                         "or re-quantization: DeepGEMM's own work) on all N = 2 x I columns")
    args = ap.parse_args()
    import gemm_bench as gb
    info = gb.probe_torch()
    log(json.dumps(info))
    dg = None
    if not args.no_dg:
        try:
            dg = import_deepgemm(args.dg_path)
            info["deep_gemm"] = getattr(dg, "__version__", "?")
        except Exception as ex:
            log(f"DeepGEMM import failed: {ex!r}")
            info["deep_gemm"] = "import failed: " + repr(ex)[:300]
            if args.warm_only:
                sys.exit(2)
    shapes = shape_list(args.shapes)
    if args.warm_only:
        warm(dg, shapes)
        return
    ks = gb.Kernels(args.module) if args.module else None
    if args.ours:
        g1, g2 = args.ours.split(";")
        OURS["gemm1"], OURS["gemm2"] = g1.split(","), g2.split(",")
    base = gb.Kernels(args.baseline) if args.baseline else None
    if args.baseline_kernels:
        g1, g2 = args.baseline_kernels.split(";")
        BASELINE["gemm1"], BASELINE["gemm2"] = [n for n in g1.split(",") if n], [n for n in g2.split(",") if n]
    if args.profile:
        profile(dg, ks, shapes, args.kernels.split(",") if args.kernels else OURS["gemm1"] + OURS["gemm2"])
        return
    results = []
    with open(os.path.join(args.out, args.jsonl), "a") as out_f:
        out_f.write(json.dumps({"info": info}) + "\n")
        for si in shapes:
            try:
                results.append(measure(dg, ks, si, args, out_f, base))
            except Exception as ex:
                log(f"shape {si} failed: {ex!r}")
                torch.cuda.empty_cache()
    print(table(results), flush=True)


if __name__ == "__main__":
    main()
