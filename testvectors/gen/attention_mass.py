"""attention_mass: attention (as in attention.py) that also accumulates, per KV head and
cache row, the softmax probability every query head of the group gave the row, for
heavy-hitter eviction (float64 reference, from the rules). No window: key j is row j.

params: as attention (window = 0, sink = 0).
inputs: q, k, v as attention; mass0 f32 [kv_heads, cap], the mass before the call.
outputs: out f32 [T, heads*head_dim] (as attention); mass f32 [kv_heads, cap] =
mass0 + sum over queries t and heads h of KV head g of softmax_t,h[j] for j <= rows + t.
"""
import numpy as np

from attention import rotate
from common import array, output, rng, uniform, vector


def reference(q, K, V, mass0, T, H, KVH, D, rd, neox, rows, scale, base, rscale):
    out = np.zeros((T, H * D))
    mass = mass0.copy()
    G = H // KVH
    for t in range(T):
        r = rows + t
        vis = np.arange(r + 1)
        for h in range(H):
            g = h // G
            qv = rotate(q[t, h * D:(h + 1) * D][None, :], [r], rd, base, rscale, neox)[0]
            keys = rotate(K[vis, g * D:(g + 1) * D], vis, rd, base, rscale, neox)
            s = keys @ qv * scale
            e = np.exp(s - s.max())
            pr = e / e.sum()
            out[t, h * D:(h + 1) * D] = pr @ V[vis, g * D:(g + 1) * D]
            mass[g, vis] += pr
    return out, mass, rows + T


def cases():
    out = []
    r = rng(611)
    specs = [
        # name, T, H, KVH, D, rd, neox, rows, cap, cache
        ("first_token", 1, 1, 1, 2, 2, 0, 0, 4, "f32"),
        ("decode_gqa_hd6", 1, 4, 2, 6, 6, 1, 9, 16, "f32"),
        ("decode_vec4_chunks", 1, 8, 4, 16, 16, 0, 300, 320, "f16"),   # several key chunks
        ("decode_scalar_chunks", 1, 4, 2, 8, 8, 0, 600, 640, "f32"),
        ("prefill_gqa", 9, 4, 2, 8, 8, 0, 13, 30, "f32"),
        ("prefill_vec4", 33, 4, 1, 16, 16, 1, 100, 200, "f16"),
        ("prefill_from_empty", 40, 8, 4, 16, 16, 0, 0, 64, "f32"),
        ("prefill_long", 64, 2, 2, 8, 8, 0, 400, 470, "f16"),
    ]
    for name, T, H, KVH, D, rd, neox, rows, cap, ct in specs:
        scale = float(np.float32(1.0 / np.sqrt(D)))
        q = uniform(r, (T, H * D), 2.5).astype(np.float32).astype(np.float64)
        dt = {"f32": np.float32, "f16": np.float16}[ct]
        K = uniform(r, (cap, KVH * D), 2.5).astype(dt).astype(np.float64)
        V = uniform(r, (cap, KVH * D), 1.0).astype(dt).astype(np.float64)
        mass0 = np.abs(uniform(r, (KVH, cap), 3.0)).astype(np.float32).astype(np.float64)
        want, mass, max_pos = reference(q, K, V, mass0, T, H, KVH, D, rd, neox, rows, scale, 10000.0, 1.0)
        params = {"T": T, "heads": H, "kv_heads": KVH, "head_dim": D, "rope_dim": rd, "neox": neox, "rows": rows,
                  "sink": 0, "window": 0, "cap": cap, "scale": scale, "cache": ct,
                  "base": 10000.0, "rope_scale": 1.0, "max_pos": max_pos}
        out.append(vector("attention_mass/%s/%s" % (ct, name), "attention_mass", params,
                          {"q": array("f32", q), "k": array(ct, K), "v": array(ct, V), "mass0": array("f32", mass0)},
                          {"out": output(want, 0, 1e-5), "mass": output(mass, 0, 1e-5)}))
    return out
