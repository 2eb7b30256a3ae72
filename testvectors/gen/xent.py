"""xent: fused softmax + NLL with its gradient, in float64.

nll[r] = logsumexp(x[r]) - x[r, target[r]]; dlogits[r] = scale * (softmax(x[r]) - onehot(target[r])),
written over the logits. A target >= vocab (0xFFFFFFFF here) masks the row: nll 0, gradient 0.
Params rows, vocab, scale. Logits span +-30 so the max subtraction matters.
Tolerance: nll 1e-6 absolute + 1e-6 relative (f32 logsumexp of <= 1000 terms); dlogits 1e-6
relative to the largest |gradient| (= scale at most).
"""
import numpy as np

from common import array, output, rng, uniform, vector


def cases():
    out = []
    r = rng(1701)
    for rows, vocab, scale in [(1, 1, 1.0), (3, 7, 0.5), (2, 64, 1.0), (5, 65, 0.125), (4, 1000, 1.0), (33, 13, 1.0 / 33)]:
        x = uniform(r, (rows, vocab), 30.0).astype(np.float32).astype(np.float64)
        tg = r.integers(0, vocab, size=rows).astype(np.uint32)
        if rows > 2:
            tg[1] = 0xFFFFFFFF
        m = x.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
        sm = np.exp(x - lse[:, None])
        nll = np.zeros(rows)
        grad = np.zeros_like(x)
        for i in range(rows):
            if tg[i] < vocab:
                nll[i] = lse[i] - x[i, tg[i]]
                oh = np.zeros(vocab)
                oh[tg[i]] = 1
                grad[i] = scale * (sm[i] - oh)
        out.append(vector("xent/rows%d_vocab%d" % (rows, vocab), "xent", {"rows": rows, "vocab": vocab, "scale": scale},
                          {"logits": array("f32", x), "targets": array("u32", tg)},
                          {"nll": output(nll, 1e-6, 1e-6), "dlogits": output(grad, 0, 1e-6)}))
    return out
