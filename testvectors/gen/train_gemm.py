"""gemm (train_gemm.wgsl): C = alpha * op(A) @ op(B) (+ C0 when acc), f32, in float64.

Params m, n, k, ta, tb (A stored [k, m] / B stored [n, k]), alpha, acc; inputs a, b and
c0 (the initial C, only when acc). Strided cases add aoff, boff, coff, lda, ldb, ldc: the
operands are blocks of larger flat arrays, and C outside the block keeps c0. Sizes: 1, edges of the 4 x 4 tile, odd, a LoRA rank.
Tolerance: f32 products of k terms, 1e-5 relative to the largest output (k <= 130 here;
the f32 sum's error grows like k * 6e-8 at worst).
"""
import numpy as np

from common import array, output, rng, uniform, vector


def cases():
    out = []
    r = rng(1101)
    shapes = [(1, 1, 1), (4, 4, 4), (5, 7, 3), (13, 9, 33), (3, 70, 8), (33, 5, 65), (9, 66, 130)]
    for idx, (m, n, k) in enumerate(shapes):
        for ta in (0, 1):
            for tb in (0, 1):
                acc = (idx + ta + tb) % 2
                alpha = [1.0, 0.25, -2.0][(idx + 2 * ta + tb) % 3]
                A = uniform(r, (k, m) if ta else (m, k), 2.0).astype(np.float32).astype(np.float64)
                B = uniform(r, (n, k) if tb else (k, n), 2.0).astype(np.float32).astype(np.float64)
                c = alpha * ((A.T if ta else A) @ (B.T if tb else B))
                ins = {"a": array("f32", A), "b": array("f32", B)}
                if acc:
                    c0 = uniform(r, (m, n), 3.0).astype(np.float32).astype(np.float64)
                    ins["c0"] = array("f32", c0)
                    c = c + c0
                params = {"m": m, "n": n, "k": k, "ta": ta, "tb": tb, "alpha": alpha, "acc": acc}
                out.append(vector("gemm/m%d_n%d_k%d_ta%d_tb%d" % (m, n, k, ta, tb), "gemm", params, ins,
                                  {"c": output(c, 0, 1e-5)}))
    # Blocks of larger matrices: offsets and row strides on A, B and C.
    for m, n, k, ta, tb in [(5, 7, 3, 0, 0), (6, 5, 9, 1, 0), (4, 9, 6, 0, 1), (7, 3, 5, 1, 1)]:
        ar, ac = (k, m) if ta else (m, k)
        br, bc = (n, k) if tb else (k, n)
        lda, ldb, ldc = ac + 3, bc + 2, n + 5
        aoff, boff, coff = 2, 5, 7
        A = uniform(r, aoff + ar * lda).astype(np.float32).astype(np.float64)
        B = uniform(r, boff + br * ldb).astype(np.float32).astype(np.float64)
        C0 = uniform(r, coff + m * ldc + 2).astype(np.float32).astype(np.float64)
        Ab = A[aoff:aoff + ar * lda].reshape(ar, lda)[:, :ac]
        Bb = B[boff:boff + br * ldb].reshape(br, ldb)[:, :bc]
        C = C0.copy()
        blk = C[coff:coff + m * ldc].reshape(m, ldc)
        blk[:, :n] += 0.5 * ((Ab.T if ta else Ab) @ (Bb.T if tb else Bb))
        params = {"m": m, "n": n, "k": k, "ta": ta, "tb": tb, "alpha": 0.5, "acc": 1,
                  "aoff": aoff, "boff": boff, "coff": coff, "lda": lda, "ldb": ldb, "ldc": ldc}
        out.append(vector("gemm/strided_m%d_n%d_k%d_ta%d_tb%d" % (m, n, k, ta, tb), "gemm", params,
                          {"a": array("f32", A), "b": array("f32", B), "c0": array("f32", C0)}, {"c": output(C, 0, 1e-5)}))
    return out
