"""Backward of y = x·Wᵀ and the LoRA add-on pass, in float64.

matmul_bwd_x: dx = dy @ W (+ dx0 when accumulate) for W [N, K] of f32, f16, q8_0, q4_0,
  dequantised exactly as the kernel sees it (f16 values, q * d); chunk_rows > 0 uploads W
  in parts of that many rows. Params M, N, K, wtype, chunk_rows, accumulate.
matmul_bwd_w: dw = dw0 + dyᵀ @ x (f32). Params M, N, K; with row0 and ldy, dw is the part of
  rows [row0, row0 + N) of a weight of ldy rows, and dy [M, ldy] is read at those columns.
lora_fwd: u = x @ Aᵀ; y = y0 + scale * u @ Bᵀ. Params M, N, K, rank, scale.
lora_bwd: db = db0 + scale dyᵀ u; du = scale dy B; da = da0 + duᵀ x; dx = dx0 + du A.
LoRA tolerance: 1e-5 relative to the largest output (short f32 sums, k <= 40).

Tolerance: sums of K (or N, M) f32 products; as matmul.py, atol = 16 u sqrt(K) S with S
the largest sum of |products| of an output, rtol = 4u for the accumulated adds.
"""
import numpy as np

from common import array, output, rng, uniform, vector
from matmul import weight

U = 2.0 ** -24


def f32(x):
    return np.asarray(x).astype(np.float32).astype(np.float64)


def tol(a, b):
    """Tolerance for a @ b: (atol, rtol)."""
    k = a.shape[1]
    s = (np.abs(a) @ np.abs(b)).max()
    return 16 * U * np.sqrt(k) * s, 4 * U


def cases():
    out = []
    r = rng(1301)
    plain = [(1, 1, 1), (2, 5, 3), (5, 17, 33), (17, 9, 64), (6, 130, 7)]
    quant = [(1, 1, 32), (2, 5, 96), (5, 17, 64), (9, 3, 160)]
    for wtype in ["f32", "f16", "q8_0", "q4_0"]:
        shapes = [(m, n, k, 0, 0) for m, n, k in (plain if wtype in ("f32", "f16") else quant)]
        k = 64 if wtype.startswith("q") else 35
        shapes += [(5, 67, k, 20, 1), (3, 9, 4 * 64 + (0 if wtype.startswith("q") else 12), 0, 1)]
        for m, n, k, chunk, acc in shapes:
            went, w = weight(r, wtype, n, k)
            dy = f32(uniform(r, (m, n), 1.0))
            dx = dy @ w
            atol, rtol = tol(dy, w)
            ins = {"dy": array("f32", dy), "w": went}
            if acc:
                dx0 = f32(uniform(r, (m, k), 2.0))
                ins["dx0"] = array("f32", dx0)
                dx = dx + dx0
            params = {"M": m, "N": n, "K": k, "wtype": wtype, "chunk_rows": chunk, "accumulate": acc}
            out.append(vector("matmul_bwd_x/%s/M%d_N%d_K%d%s" % (wtype, m, n, k, "_chunk%d" % chunk if chunk else ""),
                              "matmul_bwd_x", params, ins, {"dx": output(dx, atol, rtol)}))
    for m, n, k in [(1, 1, 1), (7, 5, 3), (33, 6, 17), (130, 9, 12)]:
        dy, x, dw0 = f32(uniform(r, (m, n))), f32(uniform(r, (m, k))), f32(uniform(r, (n, k), 2.0))
        atol, rtol = tol(dy.T, x)
        out.append(vector("matmul_bwd_w/M%d_N%d_K%d" % (m, n, k), "matmul_bwd_w", {"M": m, "N": n, "K": k},
                          {"dy": array("f32", dy), "x": array("f32", x), "dw0": array("f32", dw0)},
                          {"dw": output(dw0 + dy.T @ x, atol, rtol)}))
    for m, n, k, row0, ldy in [(5, 4, 7, 3, 9), (33, 6, 17, 0, 13)]:
        dy, x, dw0 = f32(uniform(r, (m, ldy))), f32(uniform(r, (m, k))), f32(uniform(r, (n, k), 2.0))
        d = dy[:, row0:row0 + n]
        atol, rtol = tol(d.T, x)
        out.append(vector("matmul_bwd_w/M%d_N%d_K%d_part%d_of%d" % (m, n, k, row0, ldy), "matmul_bwd_w",
                          {"M": m, "N": n, "K": k, "row0": row0, "ldy": ldy},
                          {"dy": array("f32", dy), "x": array("f32", x), "dw0": array("f32", dw0)},
                          {"dw": output(dw0 + d.T @ x, atol, rtol)}))
    for m, n, k, rank, scale in [(1, 3, 5, 1, 2.0), (7, 12, 16, 8, 2.0), (19, 33, 40, 4, 0.5)]:
        x, a, b = f32(uniform(r, (m, k))), f32(uniform(r, (rank, k), 0.5)), f32(uniform(r, (n, rank), 0.5))
        y0, dy = f32(uniform(r, (m, n))), f32(uniform(r, (m, n)))
        u = x @ a.T
        y = y0 + scale * u @ b.T
        ut = f32(u)  # the kernel's u is f32; the backward gets that u
        params = {"M": m, "N": n, "K": k, "rank": rank, "scale": scale}
        out.append(vector("lora_fwd/M%d_N%d_K%d_r%d" % (m, n, k, rank), "lora_fwd", params,
                          {"x": array("f32", x), "a": array("f32", a), "b": array("f32", b), "y0": array("f32", y0)},
                          {"u": output(u, 0, 1e-5), "y": output(y, 0, 1e-5)}))
        da0, db0, dx0 = f32(uniform(r, (rank, k))), f32(uniform(r, (n, rank))), f32(uniform(r, (m, k)))
        du = scale * dy @ b
        db = db0 + scale * dy.T @ ut
        da = da0 + du.T @ x
        dx = dx0 + du @ a
        out.append(vector("lora_bwd/M%d_N%d_K%d_r%d" % (m, n, k, rank), "lora_bwd", params,
                          {"x": array("f32", x), "u": array("f32", ut), "dy": array("f32", dy), "a": array("f32", a),
                           "b": array("f32", b), "da0": array("f32", da0), "db0": array("f32", db0), "dx0": array("f32", dx0)},
                          {"du": output(du, 0, 1e-5), "da": output(da, 0, 1e-5), "db": output(db, 0, 1e-5), "dx": output(dx, 0, 1e-5)}))
    return out
