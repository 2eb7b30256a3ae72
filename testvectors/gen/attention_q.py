"""attention over quantised KV caches: attention.py's kernel, rules, params and reference,
with k and v given as raw q8_0 or q4_0 blocks (32 consecutive channels of a row, f16 scale
first; kvquant.py) and cache = "q8_0" | "q4_0" (or "k/v" for mixed types, e.g. "q8_0/f16").
The reference runs on exactly the dequantised values the kernel reads, so the tolerance is
attention.py's float32 one; what quantising costs is measured end to end (perplexity).
"""
import numpy as np

from attention import reference
from common import array, output, rng, uniform, vector
from kvquant import b64, quantize


def cache_entry(r, shape, scale, ct):
    x = uniform(r, shape, scale).astype(np.float32).astype(np.float64)
    if ct in ("f32", "f16"):
        dt = {"f32": np.float32, "f16": np.float16}[ct]
        x = x.astype(dt).astype(np.float64)
        return array(ct, x), x
    raw, deq = quantize(x, ct)
    return {"dtype": ct, "shape": list(shape), "b64": b64(raw)}, deq


def cases():
    out = []
    r = rng(1302)
    specs = [
        # name, T, H, KVH, D, rd, neox, rows, sink, window, cap, k type, v type
        ("decode_hd8_stories", 1, 8, 4, 8, 8, 0, 40, 0, 0, 64, "q8_0", "q8_0"),   # blocks span 4 heads
        ("prefill_hd8_stories", 6, 8, 4, 8, 8, 0, 10, 0, 0, 32, "q4_0", "q4_0"),
        ("decode_hd16_656k", 1, 8, 4, 16, 16, 0, 70, 0, 0, 96, "q4_0", "q4_0"),   # vectorised kernel
        ("prefill_hd64", 5, 8, 2, 64, 64, 1, 20, 0, 0, 32, "q8_0", "q8_0"),
        ("window_wrap_hd32", 4, 4, 2, 32, 32, 0, 50, 4, 16, 24, "q4_0", "q4_0"),
        ("mixed_k8_vf16", 3, 4, 2, 64, 64, 0, 12, 0, 0, 20, "q8_0", "f16"),
        ("mixed_k4_v8_hd16", 2, 4, 2, 16, 16, 1, 30, 0, 0, 40, "q4_0", "q8_0"),
        ("mixed_kf32_v4_hd8", 2, 8, 4, 8, 8, 0, 7, 0, 0, 12, "f32", "q4_0"),
    ]
    for name, T, H, KVH, D, rd, neox, rows, sink, window, cap, kt, vt in specs:
        scale = float(np.float32(1.0 / np.sqrt(D)))
        q = uniform(r, (T, H * D), 2.5).astype(np.float32).astype(np.float64)
        ke, K = cache_entry(r, (cap, KVH * D), 2.5, kt)
        ve, V = cache_entry(r, (cap, KVH * D), 1.0, vt)
        want, max_pos = reference(q, K, V, T, H, KVH, D, rd, neox, rows, sink, window, cap, scale, 10000.0, 1.0)
        ct = kt if kt == vt else kt + "/" + vt
        params = {"T": T, "heads": H, "kv_heads": KVH, "head_dim": D, "rope_dim": rd, "neox": neox, "rows": rows,
                  "sink": sink, "window": window, "cap": cap, "scale": scale, "cache": ct,
                  "base": 10000.0, "rope_scale": 1.0, "max_pos": max_pos}
        out.append(vector("attention/%s/%s" % (ct, name), "attention", params,
                          {"q": array("f32", q), "k": ke, "v": ve}, {"out": output(want, 0, 1e-5)}))
    return out
