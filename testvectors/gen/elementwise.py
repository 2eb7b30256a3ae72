"""add and swiglu over flat f32 arrays: out = a + b; out = silu(a) * b, silu(g) = g / (1 + exp(-g))."""
import numpy as np

from common import array, output, rng, uniform, vector


def cases():
    out = []
    r = rng(101)
    for n in [1, 7, 64, 1000, 4099]:
        a, b = uniform(r, n, 4.0), uniform(r, n, 4.0)
        a32, b32 = a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
        ins = {"a": array("f32", a32), "b": array("f32", b32)}
        out.append(vector("add/n%d" % n, "add", {"n": n}, ins, {"out": output(a32 + b32, 0, 1e-7)}))
        silu = a32 / (1.0 + np.exp(-a32))
        out.append(vector("swiglu/n%d" % n, "swiglu", {"n": n}, ins, {"out": output(silu * b32, 0, 1e-6)}))
    return out
