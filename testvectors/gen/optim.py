"""Optimiser kernels, in float64.

adamw: one step of torch.optim.AdamW semantics with g = grad * gscale * clip[1]:
  m = b1 m0 + (1-b1) g; v = b2 v0 + (1-b2) g^2;
  param = param0 - lr (m / (1-b1^step) / (sqrt(v / (1-b2^step)) + eps) + wd param0);
  grad = 0 when zero_grad, else unchanged. Params n, lr, b1, b2, eps, wd, step, gscale, zero_grad.
gradnorm: tensors g0..g{k-1} (sizes around the 4096-element chunk); out = [sqrt(sum of all
  squares), min(1, max_norm / (norm + 1e-6))] (scale 1 when max_norm <= 0).
Tolerance: adamw 1e-6 relative (f32 element-wise, the host's bias corrections rounded to f32);
gradnorm 1e-6 relative (f32 sums of <= 10^4 squares in chunks).
"""
import numpy as np

from common import array, output, rng, uniform, vector, xorshift_array


def f32(x):
    return np.asarray(x).astype(np.float32).astype(np.float64)


def cases():
    out = []
    r = rng(2001)
    for n, step, gscale, clipv, zero, wd in [(1, 1, 1.0, 1.0, 0, 0.0), (7, 1, 0.5, 1.0, 1, 0.01), (100, 7, 1.0, 0.3, 0, 0.1),
                                             (4099, 1000, 0.25, 0.9, 1, 0.0)]:
        lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
        # the kernel gets f32 hyperparameters: 1 - f32(0.999) differs from 0.001 by 1e-5 relative
        lr, b1, b2, eps, wd = (float(np.float32(x)) for x in (lr, b1, b2, eps, wd))
        p0, g0, m0 = f32(uniform(r, n)), f32(uniform(r, n, 0.1)), f32(uniform(r, n, 0.05))
        v0 = f32(np.abs(uniform(r, n, 0.01))) if step > 1 else np.zeros(n)
        clip = f32([2.5, clipv])
        g = g0 * np.float64(np.float32(gscale)) * clip[1]
        m = b1 * m0 + (1 - b1) * g
        v = b2 * v0 + (1 - b2) * g * g
        bc1, bc2 = 1 - b1 ** step, 1 - b2 ** step
        p = p0 - lr * (m / bc1 / (np.sqrt(v / bc2) + eps) + wd * p0)
        params = {"n": n, "lr": lr, "b1": b1, "b2": b2, "eps": eps, "wd": wd, "step": step, "gscale": gscale, "zero_grad": zero}
        out.append(vector("adamw/n%d_step%d" % (n, step), "adamw", params,
                          {"param0": array("f32", p0), "grad0": array("f32", g0), "m0": array("f32", m0), "v0": array("f32", v0),
                           "clip": array("f32", clip)},
                          {"param": output(p, 0, 1e-6), "m": output(m, 0, 1e-6), "v": output(v, 0, 1e-6),
                           "grad": output(np.zeros(n) if zero else g0, 0, 0)}))
    seed = 20011
    for sizes, max_norm in [([1], 0.0), ([3, 4096, 5], 10.0), ([4097, 9000, 2, 100], 1e6), ([8192], 1.0)]:
        ins, total = {}, 0.0
        for i, n in enumerate(sizes):
            if n > 200:
                e, g = xorshift_array("f32", [n], seed, 0.5)
                seed += 1
            else:
                g = f32(uniform(r, n, 0.5))
                e = array("f32", g)
            ins["g%d" % i] = e
            total += (g * g).sum()
        norm = np.sqrt(total)
        scale = min(1.0, max_norm / (norm + 1e-6)) if max_norm > 0 else 1.0
        out.append(vector("gradnorm/%s" % "_".join(map(str, sizes)), "gradnorm", {"tensors": len(sizes), "max_norm": max_norm},
                          ins, {"out": output([norm, scale], 0, 1e-6)}))
    return out
