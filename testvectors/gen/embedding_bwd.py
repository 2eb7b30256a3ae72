"""embedding_bwd: dtable = dtable0 + scatter-add of dy rows by token id, in float64.

Ids repeat (so rows gather several tokens), some table rows get nothing (they keep dtable0).
Params t, d, vocab; inputs ids u32 [t], dy f32 [t, d], dtable0 f32 [vocab, d].
Tolerance 1e-6 relative to the largest |output| (f32 sums of a few terms).
"""
import numpy as np

from common import array, output, rng, uniform, vector


def cases():
    out = []
    r = rng(1801)
    for t, d, vocab in [(1, 1, 1), (5, 3, 4), (17, 8, 6), (64, 33, 100), (200, 5, 7)]:
        ids = r.integers(0, vocab, size=t).astype(np.uint32)
        dy = uniform(r, (t, d)).astype(np.float32).astype(np.float64)
        dt0 = uniform(r, (vocab, d)).astype(np.float32).astype(np.float64)
        dt = dt0.copy()
        for i in range(t):
            dt[ids[i]] += dy[i]
        out.append(vector("embedding_bwd/t%d_d%d_vocab%d" % (t, d, vocab), "embedding_bwd", {"t": t, "d": d, "vocab": vocab},
                          {"ids": array("u32", ids), "dy": array("f32", dy), "dtable0": array("f32", dt0)},
                          {"dtable": output(dt, 0, 1e-6)}))
    return out
