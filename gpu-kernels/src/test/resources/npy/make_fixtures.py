# Writes the .npy fixtures of this folder with NumPy's own writer (numpy.lib.format).
# Run from this folder: python3 make_fixtures.py  (the committed files were made with NumPy 2.4.6).
# Values follow simple formulas that NpyFixturesTest recomputes in Java:
#   f32 arrays: x[i] = (i - 7) * 0.375 for the flat index i, then x[0] = -0.0 where the array is non-empty
#   u16 arrays: x[i] = (i * 4099 + 16256) % 65536 (bf16 bit patterns; many above 32767)
#   f64 arrays: x[i] = i / 3
import numpy as np
from numpy.lib import format as npf

def f32(shape):
    n = int(np.prod(shape))
    x = ((np.arange(n) - 7) * 0.375).astype('<f4')
    if n:
        x[0] = -0.0
    return x.reshape(shape)

def u16(shape):
    n = int(np.prod(shape))
    return ((np.arange(n, dtype=np.int64) * 4099 + 16256) % 65536).astype('<u2').reshape(shape)

def write(name, arr, version):
    with open(name, 'wb') as f:
        npf.write_array(f, arr, version=version)

write('f32_3x5_v1.npy', f32((3, 5)), (1, 0))
write('f32_4x3_v2.npy', f32((4, 3)), (2, 0))
write('f32_2x4_v3.npy', f32((2, 4)), (3, 0))
write('u16_3x4_v1.npy', u16((3, 4)), (1, 0))
write('u16_2x6_v3.npy', u16((2, 6)), (3, 0))
write('f64_2x2_v1.npy', np.arange(4, dtype='<f8').reshape(2, 2) / 3, (1, 0))
np.save('f32_7_save.npy', f32((7,)))               # np.save's default: version 1.0, 1-D
np.save('f32_0x4_save.npy', f32((0, 4)))           # empty
np.save('f32_2x3_fortran.npy', np.asfortranarray(f32((2, 3))))  # fortran_order True: must be refused
np.save('f32_2x3_bigendian.npy', f32((2, 3)).astype('>f4'))      # '>f4': must be refused
np.save('u1_5_save.npy', np.arange(5, dtype=np.uint8) * 50)      # '|u1'
