"""add, swiglu, geglu and softcap over flat f32 arrays: out = a + b; out = silu(a) * b,
silu(g) = g / (1 + exp(-g)); out = gelu_tanh(a) * b (GELU's tanh approximation, Gemma);
out = limit * tanh(a / limit) (Gemma 2's softcapping)."""
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
        gelu = 0.5 * a32 * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (a32 + 0.044715 * a32 ** 3)))
        out.append(vector("geglu/n%d" % n, "geglu", {"n": n}, ins, {"out": output(gelu * b32, 1e-6, 1e-5)}))
        for limit in [0.5, 3.0]:
            big = (a32 * 20.0).astype(np.float32).astype(np.float64)  # reaches far into the saturated range
            capped = limit * np.tanh(big / limit)
            out.append(vector("softcap/n%d/l%g" % (n, limit), "softcap", {"n": n, "limit": limit},
                              {"a": array("f32", big)}, {"out": output(capped, 1e-6, 1e-5)}))
    return out
