"""rmsnorm and softmax over f32 [rows, n], row by row, in float64.

rmsnorm: y = x / sqrt(mean(x^2) + eps) * w, params rows, n, eps.
softmax: y = exp(x - max x) / sum exp(x - max x), params rows, n.
Sizes: 1, odd, around the workgroup size 64, a model width (4096), many short rows.
"""
import numpy as np

from common import array, output, rng, uniform, vector, xorshift_array


def cases():
    out = []
    r = rng(301)
    seed = 3001
    for rows, n in [(1, 1), (1, 7), (3, 63), (2, 64), (5, 65), (1, 1000), (2, 4096), (129, 17)]:
        eps = 1e-5 if n > 1 else 1e-6
        if rows * n > 5000:
            xe, x = xorshift_array("f32", [rows, n], seed, 3.0)
            seed += 1
        else:
            x = uniform(r, (rows, n), 3.0).astype(np.float32).astype(np.float64)
            xe = array("f32", x)
        w = uniform(r, (1, n), 2.0).astype(np.float32).astype(np.float64)
        y = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + np.float64(np.float32(eps))) * w
        params = {"rows": rows, "n": n, "eps": eps}
        out.append(vector("rmsnorm/rows%d_n%d" % (rows, n), "rmsnorm", params,
                          {"x": xe, "w": array("f32", w)}, {"y": output(y, 0, 1e-5)}))

        # softmax logits with a wide range, so max-subtraction matters
        if rows * n > 5000:
            se, s = xorshift_array("f32", [rows, n], seed, 60.0)
            seed += 1
        else:
            s = uniform(r, (rows, n), 60.0).astype(np.float32).astype(np.float64)
            se = array("f32", s)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        out.append(vector("softmax/rows%d_n%d" % (rows, n), "softmax", {"rows": rows, "n": n},
                          {"x": se}, {"y": output(e / e.sum(axis=1, keepdims=True), 0, 1e-5)}))
    return out
