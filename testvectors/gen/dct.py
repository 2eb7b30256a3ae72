"""dct2, dct3, compress, compress_cache: orthonormal DCTs along the rows and the FreqKV
compression (docs/freqkv.md), with scipy.fft in float64 as the reference.

dct2      params L, C.  x f32 [L, C] -> y [L, C] = scipy.fft.dct(x, type=2, norm="ortho", axis=0)
dct3      params L, C.  x f32 [L, C] -> y [L, C] = scipy.fft.dct(x, type=3, norm="ortho", axis=0)
          (the inverse of dct2)
compress  params L, m, C.  x f32 [L, C] -> y [m, C] = sqrt(m/L) * dct3(dct2(x)[:m])
          with the optional ablation params keep ("low" | "high") and scale ("amplitude" |
          "energy"): y = c * dct3(dct2(x)[k0:k0+m]), k0 = 0 (low) or L-m (high),
          c = sqrt(m/L) (amplitude: the mean of the span is kept) or 1 (energy: with
          orthonormal transforms the m rows hold exactly the kept coefficients' energy).
compress_cache  params S, L, m, R, C, batches, stride, dtype ("f32" | "f16"), and keep/scale.
          cache [batches*stride, C] of dtype; in place, in each matrix b (rows
          b*stride..): sinks [0, S) stay, [S, S+L) become the m compressed rows, the R
          recent rows [S+L, S+L+R) move to [S+m, S+m+R). Output y [batches, S+m+R, C]:
          those rows of each matrix after the compression (later rows are unspecified).

Tolerances (norm-wise, README.md): f32 results within 1e-5 of max|y| (the float32 FFT's
error grows like log L; we see about 3e-7). An f16 cache stores each result rounded to
half precision: one half ulp, at most 2^-11 of max|y|, plus the f32 error.
"""
import numpy as np
from scipy import fft

from common import array, output, rng, uniform, vector, xorshift_array

RTOL_F32 = 1e-5
RTOL_F16 = 2.0 ** -11 + 2e-5


def compress(x, m, keep="low", scale="amplitude"):
    L = x.shape[0]
    k0 = 0 if keep == "low" else L - m
    c = np.sqrt(m / L) if scale == "amplitude" else 1.0
    return c * fft.dct(fft.dct(x, type=2, norm="ortho", axis=0)[k0:k0 + m], type=3, norm="ortho", axis=0)


class Inputs:
    def __init__(self):
        self.r = rng(301)
        self.seed = 3001

    def matrix(self, shape, dtype="f32"):
        """Inline random values for small arrays, the xorshift generator for large ones."""
        if int(np.prod(shape)) > 4096:
            entry, values = xorshift_array(dtype, list(shape), self.seed, 1.0)
            self.seed += 1
            return entry, values
        np_type = {"f32": np.float32, "f16": np.float16}[dtype]
        values = uniform(self.r, shape, 1.0).astype(np_type).astype(np.float64)
        return array(dtype, values), values


def cases():
    out = []
    ins = Inputs()
    pow2 = [2 ** k for k in range(1, 14)] + [65536]
    odd = [3, 5, 37, 100, 127, 1000, 2044, 4092]  # 37, 127 and 2044 = 4*7*73 take Bluestein

    def width(L):
        if L <= 256:
            return 8
        return 1

    dct_shapes = [(L, width(L)) for L in pow2 + odd] + [(3, 4096), (1, 3)]
    for L, C in dct_shapes:
        xe, x = ins.matrix((L, C))
        for kind in (2, 3):
            y = fft.dct(x, type=kind, norm="ortho", axis=0)
            out.append(vector("dct%d/L%d_C%d" % (kind, L, C), "dct%d" % kind, {"L": L, "C": C},
                              {"x": xe}, {"y": output(y, 0, RTOL_F32, dtype="f32")}))

    comp = []
    for L in pow2:
        comp.append((L, L // 2, width(L)))
    comp += [(2, 1, 1), (3, 1, 8), (3, 2, 8), (5, 2, 8), (8, 7, 8), (16, 5, 8), (37, 18, 8),
             (37, 31, 8), (100, 50, 8), (100, 29, 8), (127, 64, 8), (1000, 500, 1), (1000, 333, 1),
             (4092, 2046, 1), (4092, 1000, 1), (4096, 2046, 1), (2044, 1022, 1),
             (65536, 1000, 1), (4, 2, 4096)]
    for L, m, C in comp:
        xe, x = ins.matrix((L, C))
        out.append(vector("compress/L%d_m%d_C%d" % (L, m, C), "compress", {"L": L, "m": m, "C": C},
                          {"x": xe}, {"y": output(compress(x, m), 0, RTOL_F32, dtype="f32")}))

    caches = [
        # S, L, m, R, C, batches, stride, dtype
        (4, 12, 6, 3, 6, 2, 20, "f32"),
        (4, 12, 6, 3, 6, 2, 20, "f16"),
        (2, 37, 11, 30, 10, 3, 71, "f16"),   # R > L-m: the recent rows move onto themselves
        (0, 2, 1, 7, 2, 5, 9, "f32"),
        (1, 100, 50, 5, 9, 1, 106, "f32"),   # odd channel count
        (4, 4092, 2046, 0, 2, 1, 4096, "f16"),  # the reference's default geometry
        (4, 1024, 512, 4, 4, 2, 1040, "f32"),
        (1, 3, 1, 1, 1024, 2, 6, "f16"),
        (3, 127, 100, 2, 4, 4, 140, "f32"),  # Bluestein, several matrices
    ]
    for S, L, m, R, C, batches, stride, dt in caches:
        ce, cache = ins.matrix((batches * stride, C), dt)
        want = []
        for b in range(batches):
            mat = cache[b * stride:(b + 1) * stride]
            y = compress(mat[S:S + L], m)  # unrounded: the f16 store is within half an ulp
            want.append(np.concatenate([mat[:S], y, mat[S + L:S + L + R]]))
        want = np.stack(want)
        params = {"S": S, "L": L, "m": m, "R": R, "C": C, "batches": batches, "stride": stride, "dtype": dt}
        name = "compress_cache/%s/S%d_L%d_m%d_R%d_C%d_b%d_stride%d" % (dt, S, L, m, R, C, batches, stride)
        rtol = RTOL_F16 if dt == "f16" else RTOL_F32
        out.append(vector(name, "compress_cache", params, {"cache": ce}, {"y": output(want, 0, rtol, dtype="f32")}))

    # The ablations (appended last so the cases above keep their inputs): every mix of
    # keep and scale on radix, odd and Bluestein lengths, and in a cache with sinks,
    # recent rows and several matrices.
    for keep, scale in (("high", "amplitude"), ("low", "energy"), ("high", "energy")):
        tag = "keep_%s_scale_%s" % (keep, scale)
        for L, m, C in [(2, 1, 1), (3, 1, 8), (8, 3, 8), (16, 8, 8), (37, 18, 8), (100, 29, 8), (127, 64, 8),
                        (1024, 512, 2), (4092, 2046, 1)]:
            xe, x = ins.matrix((L, C))
            out.append(vector("compress/%s/L%d_m%d_C%d" % (tag, L, m, C), "compress",
                              {"L": L, "m": m, "C": C, "keep": keep, "scale": scale},
                              {"x": xe}, {"y": output(compress(x, m, keep, scale), 0, RTOL_F32, dtype="f32")}))
        for S, L, m, R, C, batches, stride, dt in [(4, 12, 6, 3, 6, 2, 20, "f32"), (2, 37, 11, 30, 10, 3, 71, "f16"),
                                                   (4, 252, 126, 0, 16, 2, 256, "f16")]:
            ce, cache = ins.matrix((batches * stride, C), dt)
            want = []
            for b in range(batches):
                mat = cache[b * stride:(b + 1) * stride]
                y = compress(mat[S:S + L], m, keep, scale)
                want.append(np.concatenate([mat[:S], y, mat[S + L:S + L + R]]))
            want = np.stack(want)
            params = {"S": S, "L": L, "m": m, "R": R, "C": C, "batches": batches, "stride": stride, "dtype": dt,
                      "keep": keep, "scale": scale}
            name = "compress_cache/%s/%s/S%d_L%d_m%d_R%d_C%d_b%d_stride%d" % (tag, dt, S, L, m, R, C, batches, stride)
            rtol = RTOL_F16 if dt == "f16" else RTOL_F32
            out.append(vector(name, "compress_cache", params, {"cache": ce}, {"y": output(want, 0, rtol, dtype="f32")}))
    return out
