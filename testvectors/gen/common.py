"""Writes freqkv test vectors (see ../README.md for the format)."""
import base64
import json
import os

import numpy as np

FORMAT = "freqkv-testvectors/1"


def rng(seed):
    return np.random.default_rng(seed)


def uniform(r, shape, scale=1.0):
    """Random values in [-scale, scale], never zero (zeros hide unwritten outputs)."""
    x = r.uniform(-scale, scale, size=shape)
    x[np.abs(x) < 1e-3 * scale] = 0.5 * scale
    return x


def _f16_bytes(a):
    return np.asarray(a, dtype=np.float16).astype("<f2").tobytes()


def quantize_q8_0(w):
    """GGUF Q8_0 blocks of a [rows, K] float array; returns (bytes, dequantised float64)."""
    rows, k = w.shape
    assert k % 32 == 0
    blocks = w.reshape(rows, k // 32, 32)
    amax = np.abs(blocks).max(axis=2)
    d = (amax / 127.0).astype(np.float16)
    df = d.astype(np.float64)
    inv = np.where(df > 0, 1.0 / np.where(df > 0, df, 1), 0)
    q = np.clip(np.rint(blocks * inv[..., None]), -127, 127).astype(np.int8)
    out = bytearray()
    for r in range(rows):
        for b in range(k // 32):
            out += _f16_bytes(d[r, b])
            out += q[r, b].tobytes()
    deq = (q.astype(np.float64) * df[..., None]).reshape(rows, k)
    return bytes(out), deq


def quantize_q4_0(w):
    """GGUF Q4_0 blocks: scale d = max / -8 (signed max), q = round(x/d + 8) clipped to 0..15."""
    rows, k = w.shape
    assert k % 32 == 0
    blocks = w.reshape(rows, k // 32, 32)
    idx = np.abs(blocks).argmax(axis=2)
    mx = np.take_along_axis(blocks, idx[..., None], axis=2)[..., 0]
    d = (mx / -8.0).astype(np.float16)
    df = d.astype(np.float64)
    inv = np.where(df != 0, 1.0 / np.where(df != 0, df, 1), 0)
    q = np.clip(np.floor(blocks * inv[..., None] + 8.5), 0, 15).astype(np.uint8)
    out = bytearray()
    for r in range(rows):
        for b in range(k // 32):
            out += _f16_bytes(d[r, b])
            lo, hi = q[r, b, :16], q[r, b, 16:]
            out += (lo | (hi << 4)).astype(np.uint8).tobytes()
    deq = ((q.astype(np.float64) - 8.0) * df[..., None]).reshape(rows, k)
    return bytes(out), deq


def array(dtype, values=None, shape=None, raw=None):
    """An array entry. values are cast to dtype; raw bytes are taken as they are."""
    if raw is None:
        v = np.asarray(values)
        shape = list(v.shape) if shape is None else shape
        np_type = {"f32": "<f4", "f16": "<f2", "f64": "<f8", "u32": "<u4", "i32": "<i4"}[dtype]
        raw = v.astype(np_type).tobytes()
    return {"dtype": dtype, "shape": [int(s) for s in shape], "b64": base64.b64encode(raw).decode()}


def xorshift_values(seed, n, scale):
    """The format's xorshift32 stream, mapped to [-scale, scale)."""
    out = np.empty(n, dtype=np.float64)
    x = seed & 0xFFFFFFFF
    assert x != 0
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = scale * (2.0 * (x >> 8) / float(1 << 24) - 1.0)
    return out


def xorshift_array(dtype, shape, seed, scale=1.0):
    """An array given by the generator; returns (entry, values rounded to dtype as float64)."""
    n = int(np.prod(shape))
    v = xorshift_values(seed, n, scale)
    # Rounded to f32 first, then (f16) to f16, exactly as the format says:
    # a direct float64 -> f16 rounding differs in rare double-rounding cases.
    v = v.astype(np.float32)
    if dtype == "f16":
        v = v.astype(np.float16)
    v = v.astype(np.float64)
    return {"dtype": dtype, "shape": list(shape), "xorshift": {"seed": seed, "scale": scale}}, v.reshape(shape)


def output(values, atol, rtol, dtype="f64"):
    e = array(dtype, values)
    e["atol"], e["rtol"] = atol, rtol
    return e


def vector(name, kernel, params, inputs, outputs):
    return {"name": name, "kernel": kernel, "params": params, "inputs": inputs, "outputs": outputs}


def write(path, vectors):
    import scipy
    doc = {
        "format": FORMAT,
        "generator": "testvectors/gen/gen.py (numpy %s, scipy %s)" % (np.__version__, scipy.__version__),
        "vectors": vectors,
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("%s: %d vectors, %d bytes" % (path, len(vectors), os.path.getsize(path)))
