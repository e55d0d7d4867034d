#!/usr/bin/env python3
"""mcast7 (session 7): the 2-CTA pair GEMM1 (grouped_gemm1_swiglu_fp8_m128usu2dc, and --kernels) against the production GEMM1
(grouped_gemm1_swiglu_fp8_m128usu2d) on the same operands: the consumers' math is the same code in the same order, so
the e4m3 outputs and their scales must be BITWISE equal (whole buffers, poisoned alike, so the rows each kernel leaves
unwritten must match too). Each kernel is launched `--repeat` times on one counter pair (the pair must come back
zeroed) and every launch must reproduce the first. Fresh random operands per run (seed printed).
Usage: mcast7-bitwise.py --module moe_kernels.fatbin   (gemm_bench.py on sys.path)
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

import gemm_bench as gb

D = "grouped_gemm1_swiglu_fp8_m128usu2d"


def run(ks, name, prob, d, repeat):
    go, hout, hs = gb.gemm1_launcher(ks, name, prob, d, True)
    go()
    torch.cuda.synchronize()
    first_h, first_s = hout.clone(), hs.view(torch.int32).clone()
    same = True
    for _ in range(repeat - 1):
        hout.fill_(0xFF)
        hs.fill_(float("nan"))
        go()
        torch.cuda.synchronize()
        same &= bool(torch.equal(first_h, hout)) and bool(torch.equal(first_s, hs.view(torch.int32)))
    return first_h, first_s, same


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", required=True)
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--kernels", default="grouped_gemm1_swiglu_fp8_m128usu2dc", help="compared with _m128usu2d (comma-separated)")
    args = ap.parse_args()
    ks = gb.Kernels(args.module)
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"seed {seed}", flush=True)
    rng = np.random.default_rng(seed)
    layer64 = [int(c) for c in rng.multinomial(64 * 160, [1 / 64] * 64)]  # ~1-2 row blocks per expert, ragged
    cases = [
        ("ragged skip", [200, 0, 128, 37, 300, 64], 2, 512, 256, True),
        ("ragged no-skip", [200, 0, 128, 37, 300, 64], 2, 512, 256, False),
        ("large", [1000, 1500, 0, 4000, 700, 128, 2900], 3, 2048, 768, True),
        ("64 experts multinomial", layer64, 1, 2048, 1024, True),
        ("equal 16 x 512 (issue-like)", [512] * 16, 0, 7168, 2048, True),
        ("equal 32 x 128 (one block each)", [128] * 32, 0, 1024, 2048, True),
    ]
    ok_all = True
    for i, (label, rows, spare, K, I, skip) in enumerate(cases):
        prob = gb.Problem(rows, spare_blocks=spare)
        prob.skip_padding = skip
        d = gb.make_gemm1(prob, K, I, True, seed + i, need_ref=False)
        hd, sd, rep_d = run(ks, D, prob, d, args.repeat)
        for name in args.kernels.split(","):
            hc, sc, rep_c = run(ks, name, prob, d, args.repeat)
            # written rows: real rows must be finite (the poison is NaN)
            q = gb.unpack_activations(hc, prob.M, I).view(torch.float8_e4m3fn).float()
            real_finite = bool(torch.isfinite(q[prob.real]).all().item())
            r = {"case": label, "kernel": name, "rows_total": sum(rows), "K": K, "N": I, "bitwise_h": bool(torch.equal(hd, hc)),
                 "bitwise_scale": bool(torch.equal(sd, sc)), "repeat_d": rep_d, "repeat": rep_c, "real_rows_written": real_finite}
            r["ok"] = r["bitwise_h"] and r["bitwise_scale"] and rep_d and rep_c and real_finite
            ok_all &= r["ok"]
            print(json.dumps(r), flush=True)
        del d
        torch.cuda.empty_cache()
    print("BITWISE", "all passed" if ok_all else "FAILED", flush=True)
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
