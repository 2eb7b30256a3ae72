"""f32_to_f16 and f16_to_f32 over flat arrays of n elements.

f32_to_f16: y = binary16 nearest to x, ties to even (numpy's astype(float16)); exact.
f16_to_f32: y = x exactly. Edge values: ties in the normal and subnormal ranges, the
smallest subnormal, values that round to zero, the largest finite half, negatives.
(Inf and NaN are left out: the judge's norm-wise tolerance can't hold them.)
"""
import numpy as np

from common import array, output, rng, vector


def f32_edges():
    ulp1 = 2.0 ** -10  # half ulp spacing at 1.0
    sub = 2.0 ** -24   # smallest half subnormal
    v = [
        1.0, -1.0, 1.0 + ulp1 / 2, 1.0 + 3 * ulp1 / 2, -(1.0 + ulp1 / 2), 1.0 + ulp1 / 2 + 2.0 ** -20,
        2048.0 + 1.0, 2048.0 + 3.0,       # ties at spacing 2
        65504.0, 65519.0, -65519.0,       # largest half; just below the overflow tie
        6.103515625e-05,                  # smallest normal half
        sub, -sub, sub / 2, 3 * sub / 2, 5 * sub / 2, sub / 2 + 2.0 ** -40,  # subnormal ties
        sub / 4, 2.0 ** -30, 1e-30,       # round to zero
        0.1, 1.0 / 3.0, 3.14159265, 1000.7,
    ]
    return np.array(v, dtype=np.float32)


def cases():
    out = []
    r = rng(701)
    for n in [1, 2, 7, 64, 1001, 4099]:
        # log-uniform magnitudes over the whole half range, random signs
        mag = np.exp(r.uniform(np.log(2.0 ** -26), np.log(60000.0), size=n))
        x = (mag * r.choice([-1.0, 1.0], size=n)).astype(np.float32)
        edges = f32_edges()
        x[:min(n, len(edges))] = edges[:min(n, len(edges))]
        y = x.astype(np.float16).astype(np.float64)
        out.append(vector("f32_to_f16/n%d" % n, "f32_to_f16", {"n": n},
                          {"x": array("f32", x)}, {"y": output(y, 0, 0)}))

        bits = r.integers(0, 0x7c00, size=n).astype(np.uint16)  # every finite half, positive
        bits[: min(n, 6)] = np.array([0x0001, 0x03ff, 0x0400, 0x7bff, 0x3c00, 0x0200], np.uint16)[: min(n, 6)]
        bits |= (r.integers(0, 2, size=n).astype(np.uint16) << 15)
        h = bits.view(np.float16)
        out.append(vector("f16_to_f32/n%d" % n, "f16_to_f32", {"n": n},
                          {"x": array("f16", h)}, {"y": output(h.astype(np.float64), 0, 0)}))
    return out
