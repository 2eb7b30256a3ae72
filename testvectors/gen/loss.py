"""nll: per-row negative log-likelihood, logsumexp(logits[r]) - logits[r, target[r]] (float64)."""
import numpy as np

from common import array, output, rng, uniform, vector, xorshift_array


def cases():
    out = []
    r = rng(303)
    # 40000 and 128256 (Llama 3) pass llvmpipe's loop cap for one invocation per row
    for rows, vocab in [(1, 1), (1, 7), (3, 512), (17, 1000), (5, 32000), (3, 40000), (2, 128256)]:
        if rows * vocab > 20000:  # large: generated from a seed, keeps the file small
            entry, logits = xorshift_array("f32", (rows, vocab), 12345 + rows, 8.0)
        else:
            logits = uniform(r, (rows, vocab), 8.0).astype(np.float32).astype(np.float64)
            entry = array("f32", logits)
        targets = r.integers(0, vocab, size=rows)
        m = logits.max(axis=1)
        lse = np.log(np.exp(logits - m[:, None]).sum(axis=1)) + m
        want = lse - logits[np.arange(rows), targets]
        # f32 sums over vocab terms of size <= 1: error ~ vocab * eps32 relative to lse.
        out.append(vector("nll/rows%d_vocab%d" % (rows, vocab), "nll", {"rows": rows, "vocab": vocab},
                          {"logits": entry, "targets": array("u32", targets)},
                          {"nll": output(want, 1e-5 * (1 + np.log(vocab)), 1e-5)}))
    return out
