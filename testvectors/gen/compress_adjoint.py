"""compress_adjoint: the gradient through a FreqKV compression of a span, in float64.

The forward maps L rows to m: y = sqrt(m/L) * DCT-III_m(DCT-II_L(x)[:m]) (orthonormal, along
rows, every channel alike), i.e. y = A x with A [m, L] built here from scipy's DCT matrices.
The kernel computes dx = dx0 + Aᵀ dy (dy rows from dy_row0, dx rows from dx_row0 of larger
tensors; the rows outside keep dx0). The generator checks <A x, dy> = <x, Aᵀ dy> with A
applied by scipy.fft transforms, and that Aᵀ equals sqrt(m/L) DCT-III_L(pad(DCT-II_m(.))).
Lengths: small, prime (a direct prime pass), a prime above 31 (Bluestein), a real span.
Tolerance: 1e-5 relative to the largest |Aᵀ dy| (f32 FFT chains), plus dx0's rounding.
"""
import numpy as np
from scipy.fft import dct, idct

from common import array, output, rng, uniform, vector


def fwd(x, L, m):
    return np.sqrt(m / L) * idct(dct(x, type=2, norm="ortho", axis=0)[:m], type=2, norm="ortho", axis=0)


def adj(dy, L, m):
    c = dct(dy, type=2, norm="ortho", axis=0)
    pad = np.zeros((L,) + dy.shape[1:])
    pad[:m] = c
    return np.sqrt(m / L) * idct(pad, type=2, norm="ortho", axis=0)


def cases():
    out = []
    r = rng(1901)
    for L, m, C, r0y, r0x in [(1, 1, 1, 0, 0), (4, 2, 1, 0, 0), (8, 4, 3, 2, 1), (10, 5, 6, 4, 4), (31, 15, 4, 4, 0),
                              (61, 30, 8, 1, 3), (508, 254, 5, 4, 4)]:
        A = np.stack([fwd(e, L, m) for e in np.eye(L)], axis=1)  # [m, L]
        x, dy = uniform(r, (L, C)), uniform(r, (m, C))
        assert abs((fwd(x, L, m) * dy).sum() - (x * (A.T @ dy)).sum()) < 1e-9
        assert np.abs(adj(dy, L, m) - A.T @ dy).max() < 1e-12
        dyf = uniform(r, (r0y + m + 2, C)).astype(np.float32).astype(np.float64)
        dx0 = uniform(r, (r0x + L + 3, C)).astype(np.float32).astype(np.float64)
        dx = dx0.copy()
        g = A.T @ dyf[r0y:r0y + m]
        dx[r0x:r0x + L] += g
        params = {"L": L, "m": m, "C": C, "dy_row0": r0y, "dx_row0": r0x}
        out.append(vector("compress_adjoint/L%d_m%d_C%d" % (L, m, C), "compress_adjoint", params,
                          {"dy": array("f32", dyf), "dx0": array("f32", dx0)}, {"dx": output(dx, 1e-5 * np.abs(g).max(), 1e-7)}))
    return out
