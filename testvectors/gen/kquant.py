"""Scaled-block weights (K-quants q4_k, q5_k, q6_k; q4_1, q5_0, q5_1, iq4_nl) in the matmul
and embedding kernels.

Vectors of the existing `matmul` and `embedding` kernels (same params, inputs and outputs as
matmul.py and embedding.py) whose weights are GGUF blocks (K-quant super-blocks of 256
elements, or blocks of 32), given as raw bytes. The blocks are random bytes with random finite f16 scales: every byte
pattern is a valid block, so the kernels meet every scale, min and quant value.

The expected values come from a float64 decoder written here from the block definitions
(README "dtypes"), element by element, independent of the Go and WGSL decoders:
  q4_k (144 bytes): f16 d, f16 dmin, scales[12] (6-bit scale and min of sub-block j: for
    j < 4 the low 6 bits of scales[j] and scales[j+4]; for j >= 4 the low and high nibbles
    of scales[j+4] with the top 2 bits of scales[j-4] and scales[j]), qs[128] (sub-blocks 2c
    and 2c+1 share qs[32c:32c+32], low nibbles for the even one); x = d*scale*q - dmin*min.
  q5_k (176 bytes): as q4_k with qh[32] after the scales: bit j of qh[l] adds 16 to element
    l of sub-block j.
  q6_k (210 bytes): ql[128], qh[64], int8 scales[16], f16 d; element i in half n = i/128,
    quarter k = (i%128)/32, lane l = i%32: low 4 bits from nibble k/2 of ql[64n + 32(k%2) + l],
    high 2 bits from bits 2k of qh[32n + l], scale scales[8n + 2k + l/16];
    x = d*scale*(q - 32).
  q4_1 (20 bytes): f16 d, f16 m, qs[16] (element i < 16: low nibble of qs[i]; i >= 16: high
    nibble of qs[i-16]); x = d*q + m.
  q5_0 (22 bytes): f16 d, u32 qh, qs[16]; q = nibble + 16 * bit i of qh; x = d*(q - 16).
  q5_1 (24 bytes): f16 d, f16 m, u32 qh, qs[16]; x = d*q + m.
  iq4_nl (18 bytes): f16 d, qs[16]; x = d * GRID[nibble].

Tolerances. The matmul kernels apply each 32-element unit's multipliers to its sums
(d*scale*sum(x q) - dmin*min*sum(x)), so rounding is relative to the magnitude of those terms,
not of the (possibly cancelled) weights: with mag = |d*scale*q| + |dmin*min| per element,
atol = 16 u sqrt(K) max(|x| @ mag^T) as matmul.py argues, rtol = 4u. The embedding computes
d*scale (exact in f32: 11 x 6 bits), times q, minus dmin*min, in f32: atol = 4u max(mag).
"""
import numpy as np

from common import array, output, rng, uniform, vector

U = 2.0 ** -24
SB = {"q4_k": 144, "q5_k": 176, "q6_k": 210, "q4_1": 20, "q5_0": 22, "q5_1": 24, "iq4_nl": 18}
SCALES_AT = {"q4_k": (0, 2), "q5_k": (0, 2), "q6_k": (208,), "q4_1": (0, 2), "q5_0": (0,), "q5_1": (0, 2), "iq4_nl": (0,)}
GRID = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]


def elems(wtype):
    return 256 if wtype.endswith("_k") else 32


def decode_small(wtype, b):
    """(values, magnitudes) of one 32-element block, in float64."""
    d = f16(b, 0)
    qs = {"q4_1": 4, "q5_0": 6, "q5_1": 8, "iq4_nl": 2}[wtype]
    vals, mags = np.empty(32), np.empty(32)
    for i in range(32):
        q = b[qs + i % 16]
        q = q & 15 if i < 16 else q >> 4
        if wtype in ("q5_0", "q5_1"):
            qh = int.from_bytes(bytes(b[qs - 4:qs]), "little")
            q += 16 * ((qh >> i) & 1)
        if wtype == "iq4_nl":
            vals[i] = d * GRID[q]
            mags[i] = abs(vals[i])
        elif wtype == "q5_0":
            vals[i] = d * (q - 16)
            mags[i] = abs(d * q) + abs(16 * d)
        else:
            m = f16(b, 2)
            vals[i] = d * q + m
            mags[i] = abs(d * q) + abs(m)
    return vals, mags


def f16(b, off):
    return float(np.frombuffer(bytes(b[off:off + 2]), dtype="<f2")[0])


def scale_min(sc, j):
    if j < 4:
        return sc[j] & 63, sc[j + 4] & 63
    return (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4), (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4)


def decode_block(wtype, b):
    """(values, magnitudes) of one block's elements, in float64."""
    if elems(wtype) == 32:
        return decode_small(wtype, b)
    vals, mags = np.empty(256), np.empty(256)
    for i in range(256):
        if wtype == "q6_k":
            d = f16(b, 208)
            n, k, l = i // 128, (i % 128) // 32, i % 32
            lo = b[64 * n + 32 * (k % 2) + l]
            lo = lo & 15 if k < 2 else lo >> 4
            hi = (b[128 + 32 * n + l] >> (2 * k)) & 3
            scale = int(np.int8(np.uint8(b[192 + 8 * n + 2 * k + l // 16])))
            vals[i] = d * scale * (lo + 16 * hi - 32)
            mags[i] = abs(vals[i])
            continue
        d, dmin = f16(b, 0), f16(b, 2)
        j, l = i // 32, i % 32
        scale, mn = scale_min(b[4:16], j)
        qs = b[16:] if wtype == "q4_k" else b[48:]
        q = qs[32 * (j // 2) + l]
        q = q & 15 if j % 2 == 0 else q >> 4
        if wtype == "q5_k":
            q += 16 * ((b[16 + l] >> j) & 1)
        vals[i] = d * scale * q - dmin * mn
        mags[i] = abs(d * scale * q) + abs(dmin * mn)
    return vals, mags


def random_blocks(r, wtype, rows, k):
    """A random [rows, k] K-quant weight: (raw bytes, values, magnitudes)."""
    nb = rows * k // elems(wtype)
    raw = bytearray(r.integers(0, 256, size=nb * SB[wtype], dtype=np.uint8).tobytes())
    for blk in range(nb):
        for off in SCALES_AT[wtype]:
            # finite, non-zero, of moderate size: 2^-10 .. 2^-3, either sign
            v = np.float16(r.choice([-1, 1]) * r.uniform(1, 2) * 2.0 ** int(r.integers(-10, -3)))
            raw[blk * SB[wtype] + off:blk * SB[wtype] + off + 2] = v.astype("<f2").tobytes()
    vals, mags = [], []
    for blk in range(nb):
        v, m = decode_block(wtype, raw[blk * SB[wtype]:(blk + 1) * SB[wtype]])
        vals.append(v)
        mags.append(m)
    return bytes(raw), np.concatenate(vals).reshape(rows, k), np.concatenate(mags).reshape(rows, k)


def matmul_case(r, wtype, m, n, k, chunk_rows=0, bias=False, accumulate=False, tag=""):
    x = uniform(r, (m, k), 1.0).astype(np.float32).astype(np.float64)
    raw, w, mag = random_blocks(r, wtype, n, k)
    y = x @ w.T
    inputs = {"x": array("f32", x), "w": array(wtype, shape=[n, k], raw=raw)}
    if bias:
        b = uniform(r, (1, n), 1.0).astype(np.float32).astype(np.float64)
        inputs["bias"] = array("f32", b)
        y = y + b
    if accumulate:
        y0 = uniform(r, (m, n), 2.0).astype(np.float32).astype(np.float64)
        inputs["y0"] = array("f32", y0)
        y = y + y0
    atol = 16 * U * np.sqrt(k) * (np.abs(x) @ mag.T).max()
    params = {"M": m, "N": n, "K": k, "wtype": wtype, "chunk_rows": chunk_rows, "accumulate": int(accumulate)}
    name = "matmul/%s/M%d_N%d_K%d%s" % (wtype, m, n, k, tag)
    return vector(name, "matmul", params, inputs, {"y": output(y, atol, 4 * U)})


def embedding_case(r, wtype, vocab, dim, ids, chunk_rows=0, tag=""):
    raw, t, mag = random_blocks(r, wtype, vocab, dim)
    ids = np.asarray(ids, dtype=np.uint32)
    params = {"tokens": len(ids), "dim": dim, "wtype": wtype, "chunk_rows": chunk_rows}
    inputs = {"ids": array("u32", ids), "table": array(wtype, shape=[vocab, dim], raw=raw)}
    name = "embedding/%s/V%d_D%d_T%d%s" % (wtype, vocab, dim, len(ids), tag)
    return vector(name, "embedding", params, inputs, {"out": output(t[ids], 4 * U * mag.max(), 0, dtype="f64")})


def cases():
    out = []
    r = rng(404)
    for wtype in ["q4_k", "q5_k", "q6_k", "q4_1", "q5_0", "q5_1", "iq4_nl"]:
        e = elems(wtype)
        # (M, N, K): one and three blocks per row (rows of unaligned blocks start mid-word on
        # odd rows), M around the 8-row tile, N around the 4-column tile.
        for m, n, nb in [(1, 1, 1), (1, 3, 3), (2, 5, 2), (5, 17, 1), (17, 9, 3), (67, 13, 1), (1, 67, 2)]:
            out.append(matmul_case(r, wtype, m, n, nb * e))
        out.append(matmul_case(r, wtype, 1, 67, e, chunk_rows=20, tag="_chunk20"))
        out.append(matmul_case(r, wtype, 5, 67, e, chunk_rows=15, bias=True, accumulate=True, tag="_chunk15_bias_acc"))
        out.append(matmul_case(r, wtype, 5, 300, e))
        for vocab, nb, tokens in [(1, 1, 1), (7, 1, 5), (33, 2, 9), (9, 3, 12)]:
            ids = r.integers(0, vocab, size=tokens)
            ids[0], ids[-1] = vocab - 1, 0
            out.append(embedding_case(r, wtype, vocab, nb * e, ids))
        ids = [0, 19, 20, 39, 40, 59, 60, 69, 5, 45, 69, 0, 33]
        out.append(embedding_case(r, wtype, 70, e, ids, chunk_rows=21, tag="_chunk21"))
    return out
