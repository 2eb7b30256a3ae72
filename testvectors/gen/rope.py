"""rope: rotary embedding of x (f32 [rows, heads*head_dim]) to per-row positions pos (u32
[rows]). Pair i < rope_dim/2 of each head turns by theta_i = pos/scale * base^(-2i/rope_dim)
(-theta_i when inverse): (a, b) -> (a cos - b sin, a sin + b cos), where the pair is
(x[2i], x[2i+1]) (GGUF 'llama', neox = 0) or (x[i], x[i + rope_dim/2]) (NeoX/qwen2, neox = 1).
Dims rope_dim..head_dim-1 are copied. params: rows, heads, head_dim, rope_dim, base, scale,
neox, inverse (0/1). Positions up to 10^6, so angles must be reduced exactly, not in f32.
"""
import numpy as np

from common import array, output, rng, uniform, vector


def rope(x, pos, heads, hd, rd, base, scale, neox, inverse):
    rows = x.shape[0]
    y = x.reshape(rows, heads, hd).copy()
    half = rd // 2
    i = np.arange(half, dtype=np.float64)
    theta = (pos.astype(np.float64) / scale)[:, None] * base ** (-2.0 * i / rd)[None, :]
    if inverse:
        theta = -theta
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    if neox:
        ia, ib = np.arange(half), np.arange(half) + half
    else:
        ia, ib = 2 * np.arange(half), 2 * np.arange(half) + 1
    a, b = x.reshape(rows, heads, hd)[:, :, ia], x.reshape(rows, heads, hd)[:, :, ib]
    y[:, :, ia] = a * c - b * s
    y[:, :, ib] = a * s + b * c
    return y.reshape(rows, heads * hd)


def cases():
    out = []
    r = rng(401)
    specs = [
        # rows, heads, head_dim, rope_dim, base, scale, pos range
        (1, 1, 2, 2, 10000.0, 1.0, 10),
        (3, 2, 6, 6, 10000.0, 1.0, 100),
        (5, 3, 10, 6, 10000.0, 1.0, 5000),      # rope_dim < head_dim, odd heads
        (7, 4, 64, 64, 10000.0, 1.0, 4096),
        (2, 2, 64, 32, 1000000.0, 1.0, 32768),  # qwen2-like base, partial rotary
        (4, 2, 128, 128, 500000.0, 1.0, 1000000),
        (33, 1, 8, 8, 10000.0, 4.0, 16384),     # linear scaling
        (6, 5, 6, 2, 10000.0, 1.0, 300),
    ]
    for rows, heads, hd, rd, base, scale, maxpos in specs:
        x = uniform(r, (rows, heads * hd), 2.0).astype(np.float32).astype(np.float64)
        pos = r.integers(0, maxpos, size=rows).astype(np.uint32)
        pos[0] = 0
        if rows > 1:
            pos[-1] = maxpos - 1
        for neox in (0, 1):
            for inverse in (0, 1):
                if inverse and rows not in (3, 7, 4):
                    continue
                y = rope(x, pos, heads, hd, rd, base, scale, neox, inverse)
                params = {"rows": rows, "heads": heads, "head_dim": hd, "rope_dim": rd, "base": base,
                          "scale": scale, "neox": neox, "inverse": inverse}
                name = "rope/%s%s/rows%d_heads%d_hd%d_rd%d_base%g_scale%g_pos%d" % (
                    "neox" if neox else "llama", "_inverse" if inverse else "", rows, heads, hd, rd, base, scale, maxpos)
                out.append(vector(name, "rope", params, {"x": array("f32", x), "pos": array("u32", pos)},
                                  {"y": output(y, 0, 2e-6)}))
    return out
