"""argmax over a flat f32 array of n elements: index of the largest value, the lowest
index on ties. Vocabulary sizes up to Llama 3's 128256, ties placed across strides and
ahead of later maxima."""
import numpy as np

from common import array, output, rng, vector, xorshift_array


def cases():
    out = []
    r = rng(801)
    specs = [
        (1, None), (2, None), (7, [(3, 6)]), (255, None), (256, [(0, 255)]), (257, [(256, 1)]),
        (1000, [(999, 5)]), (4099, [(4098, 17), (17, 3000)]),
    ]
    for n, ties in specs:
        x = r.uniform(-8.0, 8.0, size=n).astype(np.float32)
        if ties:
            # the maximum appears at both indices of each pair (a, b); later pairs are
            # smaller, so only the first pair holds the maximum
            top = np.float32(x.max() + 1.0)
            for a, b in ties:
                x[a] = x[b] = top
                top = np.float32(top - 0.25)
        want = int(np.argmax(x))  # numpy returns the first occurrence
        name = "argmax/n%d%s" % (n, "_ties" if ties else "")
        out.append(vector(name, "argmax", {"n": n}, {"x": array("f32", x)},
                          {"index": output(np.array([want], dtype=np.float64), 0, 0)}))
    # vocabulary sizes (GPT-2, Llama 3) from the xorshift stream, which repeats values
    for n, seed in [(50257, 8001), (128256, 8002)]:
        xe, x = xorshift_array("f32", [1, n], seed, 8.0)
        want = int(np.argmax(x))
        out.append(vector("argmax/n%d" % n, "argmax", {"n": n}, {"x": xe},
                          {"index": output(np.array([want], dtype=np.float64), 0, 0)}))
    return out
