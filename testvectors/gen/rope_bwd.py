"""rope_bwd: the gradient through a rotary embedding, dx = Jᵀ dy for y = rope(x, pos), which
the engine computes with the forward kernel at inverse = 1. J is built here as an explicit
per-row rotation matrix (block-diagonal over the rotary pairs, identity past rope_dim), so the
check shares nothing with rope.py's direct formula. Params as rope.py (inverse implied).
Tolerance 2e-6 relative (as the forward).
"""
import numpy as np

from common import array, output, rng, uniform, vector


def jacobian(pos, heads, hd, rd, base, scale, neox):
    half = rd // 2
    J = np.eye(heads * hd)
    for h in range(heads):
        for i in range(half):
            th = pos / scale * base ** (-2.0 * i / rd)
            a, b = (i, i + half) if neox else (2 * i, 2 * i + 1)
            a, b = h * hd + a, h * hd + b
            c, s = np.cos(th), np.sin(th)
            J[a, a], J[a, b], J[b, a], J[b, b] = c, -s, s, c
    return J


def cases():
    out = []
    r = rng(1501)
    for rows, heads, hd, rd, base, scale, maxpos in [(1, 1, 2, 2, 10000.0, 1.0, 10), (5, 3, 10, 6, 10000.0, 1.0, 5000),
                                                      (4, 2, 16, 16, 500000.0, 1.0, 100000), (3, 2, 12, 4, 10000.0, 2.0, 2048)]:
        dy = uniform(r, (rows, heads * hd), 2.0).astype(np.float32).astype(np.float64)
        pos = r.integers(0, maxpos, size=rows).astype(np.uint32)
        for neox in (0, 1):
            dx = np.stack([jacobian(float(pos[t]), heads, hd, rd, base, scale, neox).T @ dy[t] for t in range(rows)])
            params = {"rows": rows, "heads": heads, "head_dim": hd, "rope_dim": rd, "base": base, "scale": scale, "neox": neox}
            out.append(vector("rope_bwd/%s/rows%d_heads%d_hd%d_rd%d" % ("neox" if neox else "llama", rows, heads, hd, rd),
                              "rope_bwd", params, {"dy": array("f32", dy), "pos": array("u32", pos)}, {"dx": output(dx, 0, 2e-6)}))
    return out
