# Writes reference.safetensors with the reference writer (the `safetensors` package, 0.8.0, numpy API; bfloat16 and
# float8_e4m3fn arrays from ml_dtypes 0.6.0). Run from this folder: python3 make_fixture.py
# SafetensorsReferenceTest recomputes the values in Java:
#   "w.f32"  F32  [2, 3]  x[i] = (i - 2) * 0.75
#   "w.bf16" BF16 [3, 2]  x[i] = (i - 2) * 0.75, rounded to bfloat16
#   "w.f16"  F16  [4]     x[i] = i / 4 - 0.5
#   "w.e4m3" F8_E4M3 [2, 2]  x = [0.5, -1.75, 448, -0.0078125]
#   "w.e4m3_scale_inv" F32 [1, 1]  [0.25]
#   "ids"    I64  [3]     [7, 8, 9]   (a dtype this library does not compute with)
import numpy as np
import ml_dtypes
from safetensors.numpy import save_file

f = (np.arange(6) - 2) * 0.75
save_file({
    "w.f32": f.astype(np.float32).reshape(2, 3),
    "w.bf16": f.astype(np.float32).astype(ml_dtypes.bfloat16).reshape(3, 2),
    "w.f16": (np.arange(4) / 4 - 0.5).astype(np.float16),
    "w.e4m3": np.array([[0.5, -1.75], [448, -0.0078125]], dtype=np.float32).astype(ml_dtypes.float8_e4m3fn),
    "w.e4m3_scale_inv": np.array([[0.25]], dtype=np.float32),
    "ids": np.array([7, 8, 9], dtype=np.int64),
}, "reference.safetensors", metadata={"format": "pt"})
