"""rmsnorm_bwd: gradients of y = x * r * w, r = 1 / sqrt(mean(x^2) + eps) per row, in float64.

dx = dx0 (when accumulate) + r * dy * w - x * r^3 / n * sum(dy * w * x); dw = dw0 + sum_rows dy * x * r.
Checked independently by a central finite difference of sum(y * dy) on the first case.
Params rows, n, eps, accumulate; inputs x, w, dy, dw0 (and dx0). Outputs dx, dw.
Tolerance: 1e-5 relative to the largest |output| (f32 row sums of n <= 1000 terms); dx also
1e-6 of its largest term r |dy w|, since the two terms cancel (n = 1: dx is only eps-sized).
"""
import numpy as np

from common import array, output, rng, uniform, vector


def f32(x):
    return np.asarray(x).astype(np.float32).astype(np.float64)


def forward(x, w, eps):
    return x / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps) * w


def grads(x, w, dy, eps):
    n = x.shape[1]
    r = 1.0 / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps)
    dx = r * dy * w - x * r ** 3 / n * (dy * w * x).sum(axis=1, keepdims=True)
    dw = (dy * x * r).sum(axis=0)
    return dx, dw


def cases():
    out = []
    r = rng(1401)
    for rows, n, acc in [(1, 1, 0), (3, 7, 1), (2, 64, 0), (5, 65, 1), (4, 1000, 1), (70, 9, 0)]:
        eps = np.float64(np.float32(1e-5))
        x, w, dy = f32(uniform(r, (rows, n), 2.0)), f32(uniform(r, (1, n), 1.5)), f32(uniform(r, (rows, n)))
        dx, dw = grads(x, w, dy, eps)
        if rows == 3:  # the formulas against finite differences of <y, dy>
            h = 1e-6
            fd = np.zeros_like(x)
            for i in range(rows):
                for j in range(n):
                    e = np.zeros_like(x)
                    e[i, j] = h
                    fd[i, j] = ((forward(x + e, w, eps) - forward(x - e, w, eps)) * dy).sum() / (2 * h)
            assert np.abs(fd - dx).max() < 1e-7, np.abs(fd - dx).max()
        dw0 = f32(uniform(r, (1, n)))
        ins = {"x": array("f32", x), "w": array("f32", w), "dy": array("f32", dy), "dw0": array("f32", dw0)}
        if acc:
            dx0 = f32(uniform(r, (rows, n)))
            ins["dx0"] = array("f32", dx0)
            dx = dx + dx0
        out.append(vector("rmsnorm_bwd/rows%d_n%d%s" % (rows, n, "_acc" if acc else ""), "rmsnorm_bwd",
                          {"rows": rows, "n": n, "eps": float(np.float32(1e-5)), "accumulate": acc}, ins,
                          {"dx": output(dx, 1e-6 * np.abs(dy * w / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps)).max(), 1e-5), "dw": output(dw0 + dw[None, :], 0, 1e-5)}))
    return out
