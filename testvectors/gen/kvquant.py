"""kvquant: quantised KV caches, ggml's q8_0 and q4_0 blocks of 32 consecutive channels of a
row (f16 scale first), as a float64 reference of ggml's quantize_row_q8_0_ref and
quantize_row_q4_0_ref:
    q8_0: d = max|x| / 127, q = round-half-away-from-zero(x / d)
    q4_0: mx = the x of largest |x|, d = mx / -8, q = min(15, trunc(x / d + 8.5)), x = d*(q-8)
    (1/d is 0 for an all-zero block); the stored scale is d rounded to f16 (nearest even).

kernel "kvstore" (the existing StoreKV launcher, on q8_0/q4_0 caches): params and rules as
kvstore.py; the cache input holds raw blocks and the output is the cache after the store,
dequantised (float64).
kernel "kvquant": the batched launchers the compressor uses. params: op ("store" | "load"),
T, rows, sink, cap, dim, batches, fstride, cstride, f32first (optional, default 0), cache
("q8_0" | "q4_0"). Row t of matrix b is f32 row b*fstride + f32first + t and cache row
b*cstride + slot(rows + t).
  store: inputs src f32 [batches*fstride, dim], cache [(batches-1)*cstride + cap, dim] raw
         blocks; output cache (after), dequantised.
  load:  input cache; output dst f32 [batches*fstride, dim] (fstride = T here, so every
         element is written).

Tolerances from the block rounding. The kernel computes 1/d and x/d in f32, the reference
in float64: they agree on every code unless x/d lies within ~1e-5 of a rounding boundary,
so the generator redraws any element within 1e-3 of one; the codes are then exact and the
only freedom left is the f16 rounding of d (WGSL's pack2x16float may round either way):
one f16 ulp, a relative 2^-10 of each value. Dequantising is exact (f16 d times a small
integer is exact in f32): tolerance 0.
"""
import numpy as np

from common import array, output, rng, vector


def slot(j, sink, cap):
    if j < cap:
        return j
    return sink + (j - sink) % (cap - sink)


def quantize(x, qt):
    """Blocks of x [rows, dim] (float64 values of f32 numbers) -> (raw bytes, dequantised)."""
    rows, dim = x.shape
    raw = bytearray()
    deq = np.zeros_like(x)
    for r in range(rows):
        for b in range(dim // 32):
            v = x[r, 32 * b:32 * b + 32]
            if qt == "q8_0":
                d = np.abs(v).max() / 127.0
                inv = 1.0 / d if d != 0 else 0.0
                y = v * inv
                q = (np.sign(y) * np.floor(np.abs(y) + 0.5)).astype(np.int64)
                d16 = np.float16(d)
                raw += np.array([d16], dtype="<f2").tobytes() + q.astype(np.int8).tobytes()
                deq[r, 32 * b:32 * b + 32] = q * float(d16)
            else:
                mx = v[np.argmax(np.abs(v))]
                d = mx / -8.0
                inv = 1.0 / d if d != 0 else 0.0
                q = np.minimum(15, np.trunc(v * inv + 8.5)).astype(np.int64)
                d16 = np.float16(d)
                nib = (q[:16] | (q[16:] << 4)).astype(np.uint8)
                raw += np.array([d16], dtype="<f2").tobytes() + nib.tobytes()
                deq[r, 32 * b:32 * b + 32] = (q - 8) * float(d16)
    return bytes(raw), deq


def clean(r, x, qt, scale):
    """Redraws elements whose x/d is within 1e-3 of a rounding boundary (see the module doc)."""
    x = x.copy()
    for _ in range(100):
        bad = False
        for row in range(x.shape[0]):
            for b in range(x.shape[1] // 32):
                v = x[row, 32 * b:32 * b + 32]
                if not v.any():
                    continue
                if qt == "q8_0":
                    d = np.abs(v).max() / 127.0
                    frac = np.abs(v / d) % 1.0
                else:
                    mx = v[np.argmax(np.abs(v))]
                    frac = (np.abs(v / (mx / -8.0)) + 0.5) % 1.0
                    frac[np.argmax(np.abs(v))] = 0.25  # the max itself is exactly -8
                near = np.abs(frac - 0.5) < 1e-3
                if near.any():
                    bad = True
                    idx = np.nonzero(near)[0] + 32 * b
                    x[row, idx] = np.float32(r.uniform(-scale, scale, size=len(idx)) * 0.9)
        if not bad:
            return x
    raise RuntimeError("could not draw clean values")


def f32(r, shape, scale):
    x = r.uniform(-scale, scale, size=shape)
    x[np.abs(x) < 1e-3 * scale] = 0.5 * scale
    return x.astype(np.float32).astype(np.float64)


def cases():
    out = []
    r = rng(1301)
    stores = [
        # T, rows, sink, cap, dim, cache: stories260K's 4 KV heads x 8 = 32 channels, 656K's 64
        (1, 0, 0, 8, 32, "q8_0"),
        (5, 3, 4, 16, 32, "q8_0"),     # rows share words (34-byte rows), straddles the sinks
        (3, 14, 4, 16, 64, "q4_0"),    # wraps: 16 -> slot 4
        (7, 30, 2, 32, 96, "q8_0"),    # wraps past two sinks, 3 blocks a row
        (1, 1000, 4, 36, 128, "q4_0"),  # deep in the ring
        (12, 0, 0, 12, 32, "q4_0"),    # fills the cache exactly, 18-byte rows
        (40, 17, 4, 64, 64, "q8_0"),   # prefill chunk
        (9, 2, 0, 16, 256, "q4_0"),
    ]
    for i, (T, rows, sink, cap, dim, ct) in enumerate(stores):
        src = clean(r, f32(r, (T, dim), 4.0), ct, 4.0)
        if i == 1:
            src[2, :] = 0.0  # an all-zero block: d = 0, q = 0
        raw, before = quantize(f32(r, (cap, dim), 4.0), ct)
        want = before.copy()
        _, deq = quantize(src, ct)
        for t in range(T):
            want[slot(rows + t, sink, cap)] = deq[t]
        params = {"T": T, "rows": rows, "sink": sink, "cap": cap, "dim": dim, "cache": ct}
        name = "kvstore/%s/T%d_rows%d_sink%d_cap%d_dim%d" % (ct, T, rows, sink, cap, dim)
        out.append(vector(name, "kvstore", params,
                          {"src": array("f32", src), "cache": {"dtype": ct, "shape": [cap, dim], "b64": b64(raw)}},
                          {"cache": output(want, 0, 2.0 ** -10)}))

    batched = [
        # op, T, rows, sink, cap, dim, batches, fstride, cstride, f32first, cache
        ("store", 6, 4, 0, 12, 32, 3, 6, 16, 0, "q8_0"),    # the compressor's write-back: rows S.. of 3 matrices
        ("store", 10, 4, 0, 16, 64, 4, 13, 16, 0, "q4_0"),
        ("store", 3, 0, 0, 5, 32, 2, 3, 7, 0, "q4_0"),      # odd strides: matrices share words
        ("store", 7, 3, 0, 12, 32, 1, 12, 12, 3, "q8_0"),   # h2o's write-back: staging rows S.. to rows S..
        ("load", 8, 4, 0, 12, 32, 3, 8, 16, 0, "q8_0"),     # the compressor's read of the span
        ("load", 5, 2, 0, 9, 96, 2, 5, 9, 0, "q4_0"),
        ("load", 4, 7, 2, 8, 64, 1, 4, 8, 0, "q8_0"),       # through the ring
    ]
    for op, T, rows, sink, cap, dim, B, fs, cs, f0, ct in batched:
        nrows = (B - 1) * cs + cap
        raw, before = quantize(f32(r, (nrows, dim), 3.0), ct)
        params = {"op": op, "T": T, "rows": rows, "sink": sink, "cap": cap, "dim": dim, "batches": B,
                  "fstride": fs, "cstride": cs, "cache": ct}
        if f0:
            params["f32first"] = f0
        name = "kvquant/%s/%s/T%d_rows%d_cap%d_dim%d_b%d_fs%d_cs%d" % (op, ct, T, rows, cap, dim, B, fs, cs)
        cache = {"dtype": ct, "shape": [nrows, dim], "b64": b64(raw)}
        if op == "store":
            src = clean(r, f32(r, (B * fs, dim), 3.0), ct, 3.0)
            _, deq = quantize(src, ct)
            want = before.copy()
            for b in range(B):
                for t in range(T):
                    want[b * cs + slot(rows + t, sink, cap)] = deq[b * fs + f0 + t]
            out.append(vector(name, "kvquant", params, {"src": array("f32", src), "cache": cache},
                              {"cache": output(want, 0, 2.0 ** -10)}))
        else:
            want = np.zeros((B * fs, dim))
            for b in range(B):
                for t in range(T):
                    want[b * fs + t] = before[b * cs + slot(rows + t, sink, cap)]
            out.append(vector(name, "kvquant", params, {"cache": cache}, {"dst": output(want, 0, 0)}))
    return out


def b64(raw):
    import base64
    return base64.b64encode(raw).decode()
