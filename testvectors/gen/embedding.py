"""embedding: out[i, :] = table[ids[i], :], dequantised, for f32, f16, q8_0 and q4_0 tables.

Params: tokens, dim, wtype, chunk_rows (0: the table in one part; else the runner uploads it
in parts of chunk_rows rows). Inputs: ids [tokens] u32 (each < vocab), table [vocab, dim].
Output: out [tokens, dim].

The expected rows are the dequantised table values, stored as f32, which holds them exactly
(f16 values, and q * d with |q| <= 127 and d an f16: at most 19 significant bits), so the
tolerance is 0.
"""
import numpy as np

from common import array, output, quantize_q4_0, quantize_q8_0, rng, uniform, vector, xorshift_array


def table(r, wtype, vocab, dim):
    """A random [vocab, dim] table as (input entry, dequantised float64 values)."""
    t = uniform(r, (vocab, dim), 1.0)
    if wtype == "f32":
        v = t.astype(np.float32).astype(np.float64)
        return array("f32", v), v
    if wtype == "f16":
        v = t.astype(np.float16).astype(np.float64)
        return array("f16", v), v
    raw, v = {"q8_0": quantize_q8_0, "q4_0": quantize_q4_0}[wtype](t)
    return array(wtype, shape=[vocab, dim], raw=raw), v


def case(name, wtype, ids, went, t, chunk_rows=0):
    ids = np.asarray(ids, dtype=np.uint32)
    params = {"tokens": len(ids), "dim": t.shape[1], "wtype": wtype, "chunk_rows": chunk_rows}
    inputs = {"ids": array("u32", ids), "table": went}
    return vector("embedding/%s/%s" % (wtype, name), "embedding", params, inputs,
                  {"out": output(t[ids], 0, 0, dtype="f32")})


def cases():
    out = []
    r = rng(303)
    for wtype in ["f32", "f16", "q8_0", "q4_0"]:
        q = wtype.startswith("q")
        # (vocab, dim, tokens): a single element; odd dims (f16 rows that start mid-word);
        # more elements than a workgroup; ids repeated, first and last rows.
        shapes = [(1, 32, 1), (7, 32, 5), (33, 96, 9), (50, 64, 70)] if q else \
                 [(1, 1, 1), (7, 3, 5), (33, 17, 9), (50, 37, 70)]
        for vocab, dim, tokens in shapes:
            went, t = table(r, wtype, vocab, dim)
            ids = r.integers(0, vocab, size=tokens)
            ids[0], ids[-1] = vocab - 1, 0
            out.append(case("V%d_D%d_T%d" % (vocab, dim, tokens), wtype, ids, went, t))
        # A table in 4 parts, ids in every part and on the part boundaries.
        vocab, dim = 70, (64 if q else 35)
        went, t = table(r, wtype, vocab, dim)
        ids = [0, 19, 20, 39, 40, 59, 60, 69, 5, 45, 69, 0, 33]
        out.append(case("V%d_D%d_T%d_chunk20" % (vocab, dim, len(ids)), wtype, ids, went, t, chunk_rows=20))
    # A vocabulary-sized table from the xorshift generator (large row offsets, a small file).
    for wtype in ["f32", "f16"]:
        vocab, dim = 32000, 16
        went, t = xorshift_array(wtype, [vocab, dim], seed=4242, scale=1.0)
        ids = r.integers(0, vocab, size=40)
        ids[0], ids[1] = vocab - 1, 0
        out.append(case("V%d_D%d_T%d_xorshift" % (vocab, dim, len(ids)), wtype, ids, went, t))
        out.append(case("V%d_D%d_T%d_xorshift_chunk9000" % (vocab, dim, len(ids)), wtype, ids, went, t,
                        chunk_rows=9000))
    return out
