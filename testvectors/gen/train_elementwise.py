"""Training element-wise kernels over flat f32 arrays, in float64.

axpy:       y[yoff+i] = beta * y0[yoff+i] + alpha * x[xoff+i] (beta == 0: y0 is NaN, never read)
fill:       y[yoff+i] = value, elements outside [yoff, yoff+n) keep y0
swiglu_bwd: for h = silu(g) * u: dgate = dh * u * s * (1 + g (1 - s)), s = sigmoid(g);
            dup = dh * silu(g)
Tolerances: axpy/fill exact to f32 rounding (1e-7 relative); swiglu_bwd 1e-6 relative
(f32 exp and a few products).
"""
import numpy as np

from common import array, output, rng, uniform, vector


def f32(x):
    return np.asarray(x).astype(np.float32).astype(np.float64)


def cases():
    out = []
    r = rng(1201)
    for n, xoff, yoff, alpha, beta in [(1, 0, 0, 2.0, 0.0), (7, 3, 5, 0.5, 1.0), (1000, 0, 17, -1.5, 0.75), (4099, 9, 0, 1.0, 1.0)]:
        x = f32(uniform(r, n + xoff, 4.0))
        y0 = f32(uniform(r, n + yoff + 3, 4.0))
        if beta == 0.0:
            y0[yoff:yoff + n] = np.nan  # never read
        y = y0.copy()
        y[yoff:yoff + n] = alpha * x[xoff:xoff + n] + (beta * y0[yoff:yoff + n] if beta != 0 else 0)
        out.append(vector("axpy/n%d_beta%g" % (n, beta), "axpy",
                          {"n": n, "xoff": xoff, "yoff": yoff, "alpha": alpha, "beta": beta},
                          {"x": array("f32", x), "y0": array("f32", y0)}, {"y": output(y, 0, 1e-7)}))
    for n, yoff, value in [(1, 0, 0.0), (9, 4, -3.5), (5000, 13, 0.0)]:
        y0 = f32(uniform(r, n + yoff + 2, 4.0))
        y = y0.copy()
        y[yoff:yoff + n] = value
        out.append(vector("fill/n%d" % n, "fill", {"n": n, "yoff": yoff, "value": value},
                          {"y0": array("f32", y0)}, {"y": output(y, 0, 0)}))
    for n in [1, 7, 64, 1000, 4099]:
        g, u, dh = f32(uniform(r, n, 6.0)), f32(uniform(r, n, 4.0)), f32(uniform(r, n, 2.0))
        if n > 10:
            g[:3] = [-80.0, 80.0, 0.5]  # saturated sigmoids stay finite
        s = 1.0 / (1.0 + np.exp(-g))
        out.append(vector("swiglu_bwd/n%d" % n, "swiglu_bwd", {"n": n},
                          {"gate": array("f32", g), "up": array("f32", u), "dh": array("f32", dh)},
                          {"dgate": output(dh * u * s * (1 + g * (1 - s)), 0, 1e-6),
                           "dup": output(dh * g * s, 0, 1e-6)}))
    return out
