"""matmul: y = x·Wᵀ (+ bias) (+ y0) for x f32 [M, K] and W [N, K] of f32, f16, q8_0 or q4_0.

Params: M, N, K, wtype, chunk_rows (0: W in one part; else the runner uploads W in parts of
chunk_rows rows), accumulate (1: y starts as input y0 and the product is added to it).
Inputs: x, w, and optionally bias [1, N] f32 and y0 [M, N] f32. Output: y [M, N].

The expected y is computed in float64 from exactly the values the kernel sees: x rounded
to f32 and W dequantised (f16 values, q * d for the block types).

Tolerance. The kernel sums K products in f32. Each rounding is at most u = 2^-24 relative
to the running sum, and with random-sign inputs the errors add like a random walk, so the
error of one output is about u * sqrt(K) * sum_k |x_k w_k| (the deterministic worst case is
K instead of sqrt(K), which no real summation order approaches). atol = 16 u sqrt(K) S,
S the largest sum_k |x_k w_k| over all outputs, leaves a wide margin while still failing a
kernel that drops or repeats a single product (an error near S / K, 60 times the atol at
K = 1024 and growing as K shrinks). rtol = 4u covers the bias and accumulate adds.
"""
import numpy as np

from common import array, output, quantize_q4_0, quantize_q8_0, rng, uniform, vector, xorshift_array

U = 2.0 ** -24


BIG = 2048  # arrays with more elements come from the xorshift generator, to keep the file small


def seed(r):
    return int(r.integers(1, 2 ** 32 - 1))


def weight(r, wtype, n, k):
    """A random [n, k] weight as (input entry, dequantised float64 values)."""
    if wtype in ("f32", "f16") and n * k > BIG:
        return xorshift_array(wtype, [n, k], seed(r))
    w = uniform(r, (n, k), 1.0)
    if wtype == "f32":
        v = w.astype(np.float32).astype(np.float64)
        return array("f32", v), v
    if wtype == "f16":
        v = w.astype(np.float16).astype(np.float64)
        return array("f16", v), v
    raw, v = {"q8_0": quantize_q8_0, "q4_0": quantize_q4_0}[wtype](w)
    return array(wtype, shape=[n, k], raw=raw), v


def tolerance(x, w, k):
    s = (np.abs(x) @ np.abs(w).T).max()
    return 16 * U * np.sqrt(k) * s, 4 * U


def case(r, wtype, m, n, k, chunk_rows=0, bias=False, accumulate=False, tag=""):
    if m * k > BIG:
        xent, x = xorshift_array("f32", [m, k], seed(r))
    else:
        x = uniform(r, (m, k), 1.0).astype(np.float32).astype(np.float64)
        xent = array("f32", x)
    went, w = weight(r, wtype, n, k)
    y = x @ w.T
    inputs = {"x": xent, "w": went}
    if bias:
        b = uniform(r, (1, n), 1.0).astype(np.float32).astype(np.float64)
        inputs["bias"] = array("f32", b)
        y = y + b
    if accumulate:
        y0 = uniform(r, (m, n), 2.0).astype(np.float32).astype(np.float64)
        inputs["y0"] = array("f32", y0)
        y = y + y0
    atol, rtol = tolerance(x, w, k)
    params = {"M": m, "N": n, "K": k, "wtype": wtype, "chunk_rows": chunk_rows, "accumulate": int(accumulate)}
    name = "matmul/%s/M%d_N%d_K%d%s" % (wtype, m, n, k, tag)
    return vector(name, "matmul", params, inputs, {"y": output(y, atol, rtol)})


def cases():
    out = []
    r = rng(202)
    # (M, N, K): M over {1, 2, 5, 17, 67}; N and K at 1, odd, around and off the 4x4 tile
    # and the 4- and 8-element loads, and multiples of 256 for the wide-load kernels.
    plain = [(1, 1, 1), (1, 3, 7), (2, 5, 3), (5, 17, 33), (17, 9, 64), (67, 13, 130),
             (1, 67, 255), (2, 4, 8), (5, 1, 17), (17, 6, 256), (1, 40, 1024), (67, 3, 1)]
    quant = [(1, 1, 32), (1, 3, 96), (2, 5, 160), (5, 17, 224), (17, 9, 288), (67, 13, 96),
             (1, 67, 256), (2, 4, 512), (5, 1, 32), (17, 6, 256), (1, 12, 1024), (67, 2, 32)]
    for wtype in ["f32", "f16", "q8_0", "q4_0"]:
        for m, n, k in (plain if wtype in ("f32", "f16") else quant):
            out.append(case(r, wtype, m, n, k))
        # Weights in >= 3 parts; with a bias and accumulation, so each part must offset
        # both y's and the bias's columns.
        k = 96 if wtype.startswith("q") else 35
        out.append(case(r, wtype, 1, 67, k, chunk_rows=20, tag="_chunk20"))
        out.append(case(r, wtype, 5, 67, k, chunk_rows=16, bias=True, accumulate=True, tag="_chunk16_bias_acc"))
        out.append(case(r, wtype, 1, 9, 64, bias=True, tag="_bias"))
        out.append(case(r, wtype, 17, 9, 64, accumulate=True, tag="_acc"))
        # More columns than one workgroup of tiles covers (64 invocations x 4 columns).
        out.append(case(r, wtype, 5, 300, 64 if wtype.startswith("q") else 20))
    # The vocabulary projection: N = 128256 outputs, more than one grid dimension holds.
    # W comes from the xorshift generator to keep the file small; y is stored as f32, whose
    # rounding (u |y|) the rtol covers.
    n, k = 128256, 16
    went, w = xorshift_array("f16", [n, k], seed=12345, scale=1.0)
    x = uniform(r, (1, k), 1.0).astype(np.float32).astype(np.float64)
    atol, rtol = tolerance(x, w, k)
    params = {"M": 1, "N": n, "K": k, "wtype": "f16", "chunk_rows": 0, "accumulate": 0}
    out.append(vector("matmul/f16/M1_N%d_K%d_vocab" % (n, k), "matmul", params,
                      {"x": array("f32", x), "w": went}, {"y": output(x @ w.T, atol, rtol + U, dtype="f32")}))
    # The xtiled kernel (x in uniform windows of 4 rows, or of 12 when the runner caps a
    # binding at 3 rows): K*4 a multiple of 256; M odd and over a window, so the last
    # window overlaps the one before; N odd and over one workgroup's columns (8 x 8); the
    # weight in parts, with a bias and accumulation.
    for wtype in ["f32", "f16", "q8_0", "q4_0"]:
        out.append(case(r, wtype, 37, 67, 192, tag="_xtile"))
        out.append(case(r, wtype, 29, 67, 128, chunk_rows=20, bias=True, accumulate=True, tag="_xtile_chunk20_bias_acc"))
    return out
