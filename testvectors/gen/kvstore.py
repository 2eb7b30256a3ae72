"""kvstore: T new rows src (f32 [T, dim]) written into a cache [cap, dim] (f32 or f16) at
the physical slots of logical rows rows..rows+T-1,
    slot(j) = j                                 if j < sink
            = sink + (j - sink) % (cap - sink)  otherwise,
every other cache row unchanged. params: T, rows, sink, cap, dim, cache ("f32" | "f16").
inputs: src, cache (the cache before the store); output: cache (after).
f32 is exact; an f16 cache holds the nearest half (ties to even), and the tolerance allows
one half ulp of the largest value since WGSL's pack2x16float may round either way.
"""
import numpy as np

from common import array, output, rng, uniform, vector, xorshift_array


def slot(j, sink, cap):
    if j < sink:
        return j
    return sink + (j - sink) % (cap - sink)


def cases():
    out = []
    r = rng(501)
    seed = 5001
    specs = [
        # T, rows, sink, cap, dim, cache
        (1, 0, 0, 8, 6, "f32"),
        (5, 3, 4, 16, 10, "f32"),       # straddles the sinks
        (3, 14, 4, 16, 7, "f32"),       # wraps: 16 -> slot 4; odd width
        (1, 1000, 4, 36, 64, "f32"),    # deep in the ring
        (12, 0, 0, 12, 3, "f32"),       # fills the cache exactly
        (1, 0, 0, 4, 2, "f16"),
        (7, 30, 2, 32, 256, "f16"),     # wraps past two sinks
        (4, 10, 0, 8, 128, "f16"),      # ring without sinks
        (3, 1, 4, 8, 6, "f16"),         # only sink rows
        (300, 17, 4, 320, 64, "f16"),   # prefill chunk
        (300, 700, 4, 320, 64, "f32"),  # prefill chunk around the ring
    ]
    for T, rows, sink, cap, dim, ct in specs:
        if T * dim > 4000:
            se, src = xorshift_array("f32", [T, dim], seed, 4.0)
            ce, cache = xorshift_array(ct, [cap, dim], seed + 1, 4.0)
            seed += 2
        else:
            src = uniform(r, (T, dim), 4.0).astype(np.float32).astype(np.float64)
            cache = uniform(r, (cap, dim), 4.0).astype({"f32": np.float32, "f16": np.float16}[ct]).astype(np.float64)
            se, ce = array("f32", src), array(ct, cache)
        want = cache.copy()
        for t in range(T):
            row = src[t].astype(np.float16) if ct == "f16" else src[t]
            want[slot(rows + t, sink, cap)] = row
        rtol = 2.0 ** -11 if ct == "f16" else 0.0
        params = {"T": T, "rows": rows, "sink": sink, "cap": cap, "dim": dim, "cache": ct}
        name = "kvstore/%s/T%d_rows%d_sink%d_cap%d_dim%d" % (ct, T, rows, sink, cap, dim)
        out.append(vector(name, "kvstore", params, {"src": se, "cache": ce},
                          {"cache": output(want, 0, rtol, dtype=ct)}))
    return out
