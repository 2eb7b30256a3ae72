"""attention: causal grouped-query attention of T queries over a KV cache that holds keys
before RoPE, rotating keys and queries by position (float64 reference, from the rules).

params: T, heads, kv_heads, head_dim, rope_dim, neox (0/1), rows, sink, window, cap, scale,
cache ("f32" | "f16"), base, rope_scale, max_pos, softcap (0: none).
inputs: q f32 [T, heads*head_dim] (not rotated); k, v [cap, kv_heads*head_dim] in the cache
dtype (the physical cache: logical row j at slot(j)). The rope table (f32 [max_pos, rope_dim],
interleaved cos, sin of theta_i = pos/rope_scale * base^(-2i/rope_dim)) is not stored: the
runner builds it with shaders.RopeTable, which these vectors therefore check as well.
output: out f32 [T, heads*head_dim].

Rules. Query t is logical row r = rows + t. Without a window (window = 0) it sees rows 0..r,
key j at position j, the query at position r. With a window it sees the sinks j < min(sink,
r+1) at position j and the rows lo..r, lo = max(sink, r - window + 1), at position
sink + (j - lo); the query is at position sink + (r - lo). Logical row j lives at
slot(j) = j if j < sink else sink + (j - sink) % (cap - sink). Query head h reads KV head
h // (heads / kv_heads). Pair i of a head (x[2i], x[2i+1]) ('llama') or (x[i], x[i+rope_dim/2])
(neox) turns by position * theta_i; dims past rope_dim are not rotated.
out = softmax(scale * q_rot . k_rot) @ v, per query and head. f16 caches: the inputs are
already half, so the reference uses exactly the values the kernel reads.
"""
import numpy as np

from common import array, output, rng, uniform, vector, xorshift_array


def rotate(x, pos, rd, base, rscale, neox):
    """x [..., n, D] rotated by positions pos [n] (float64, from the formula)."""
    half = rd // 2
    theta = (np.asarray(pos, dtype=np.float64) / rscale)[:, None] * base ** (-2.0 * np.arange(half) / rd)[None, :]
    c, s = np.cos(theta), np.sin(theta)
    ia, ib = (np.arange(half), np.arange(half) + half) if neox else (2 * np.arange(half), 2 * np.arange(half) + 1)
    y = x.copy()
    a, b = x[..., ia], x[..., ib]
    y[..., ia] = a * c - b * s
    y[..., ib] = a * s + b * c
    return y


def reference(q, K, V, T, H, KVH, D, rd, neox, rows, sink, window, cap, scale, base, rscale, softcap=0.0):
    out = np.zeros((T, H * D))
    G = H // KVH
    max_pos = 0
    for t in range(T):
        r = rows + t
        if window == 0:
            vis = np.arange(r + 1)
            kpos, qpos = vis, r
        else:
            lo = max(sink, r - window + 1)
            vis = np.concatenate([np.arange(min(sink, r + 1)), np.arange(lo, r + 1)]).astype(np.int64)
            kpos = np.where(vis < sink, vis, sink + (vis - lo))
            qpos = sink + (r - lo)
        max_pos = max(max_pos, qpos + 1, int(np.max(kpos)) + 1)
        slots = np.where(vis < sink, vis, sink + (vis - sink) % max(cap - sink, 1))
        for h in range(H):
            g = h // G
            qv = rotate(q[t, h * D:(h + 1) * D][None, :], [qpos], rd, base, rscale, neox)[0]
            keys = rotate(K[slots, g * D:(g + 1) * D], kpos, rd, base, rscale, neox)
            s = keys @ qv * scale
            if softcap > 0:
                s = softcap * np.tanh(s / softcap)  # Gemma 2's attention-logit softcapping
            e = np.exp(s - s.max())
            out[t, h * D:(h + 1) * D] = (e / e.sum()) @ V[slots, g * D:(g + 1) * D]
    return out, max_pos


def cases():
    out = []
    r = rng(601)
    seed = 6001
    specs = [
        # name, T, H, KVH, D, rd, neox, rows, sink, window, cap, cache, base, rope_scale
        ("first_token", 1, 1, 1, 2, 2, 0, 0, 0, 0, 4, "f32", 10000.0, 1.0),
        ("decode_hd6", 1, 4, 2, 6, 6, 1, 9, 0, 0, 16, "f32", 10000.0, 1.0),
        ("decode_512", 1, 16, 4, 64, 64, 0, 511, 0, 0, 512, "f16", 10000.0, 1.0),
        ("decode_2048_mha", 1, 8, 8, 64, 64, 1, 2047, 0, 0, 2048, "f32", 500000.0, 1.0),
        ("decode_300_scaled", 1, 6, 3, 10, 6, 0, 299, 0, 0, 310, "f16", 10000.0, 2.0),
        ("prefill_hd10_rd6", 7, 6, 2, 10, 6, 0, 0, 0, 0, 8, "f32", 10000.0, 1.0),
        ("prefill_g4", 33, 4, 1, 16, 16, 1, 100, 0, 0, 200, "f16", 10000.0, 1.0),
        ("prefill_sink_rows", 3, 2, 1, 6, 6, 0, 0, 4, 2, 8, "f32", 10000.0, 1.0),
        ("window", 5, 2, 1, 8, 8, 0, 20, 2, 8, 32, "f32", 10000.0, 1.0),
        ("window_wrap", 4, 4, 2, 64, 32, 0, 50, 4, 16, 24, "f16", 10000.0, 1.0),
        ("window_wrap_neox", 6, 4, 2, 64, 64, 1, 37, 4, 10, 19, "f32", 1000000.0, 1.0),
        ("window_nosink_wrap", 3, 2, 2, 4, 4, 0, 70, 0, 10, 12, "f32", 10000.0, 1.0),
        ("window_decode_ring", 1, 8, 2, 64, 64, 1, 5000, 4, 1020, 1024, "f32", 10000.0, 1.0),
        ("window_decode_ring_f16", 1, 16, 4, 64, 64, 0, 3000, 4, 1000, 1100, "f16", 10000.0, 1.0),
        ("prefill_query_chunks", 64, 2, 1, 2, 2, 0, 32768, 0, 0, 32832, "f32", 10000.0, 1.0),
        ("prefill_query_chunks_hd16", 64, 1, 1, 16, 16, 1, 65000, 0, 0, 65064, "f16", 10000.0, 1.0),
        ("hd80_rd32_neox", 3, 4, 2, 80, 32, 1, 20, 0, 0, 32, "f16", 10000.0, 1.0),
        ("mqa_g8", 2, 8, 1, 64, 64, 0, 40, 0, 0, 64, "f32", 10000.0, 1.0),
        ("prefill_odd_rows", 9, 4, 2, 32, 16, 0, 13, 0, 0, 30, "f32", 10000.0, 1.0),
    ]
    # Gemma 2's softcap (scores capped as c*tanh(s/c)), appended so the cases above keep
    # their draws: the scalar and vec4 kernels, windows, f16, caps that bite hard and softly.
    softcaps = {"softcap_decode_hd10": 1.0, "softcap_prefill_vec4": 2.0, "softcap_window_f16": 0.5,
                "softcap_prefill_g2_neox": 4.0}
    specs += [
        ("softcap_decode_hd10", 1, 6, 3, 10, 6, 0, 40, 0, 0, 48, "f32", 10000.0, 1.0),
        ("softcap_prefill_vec4", 9, 4, 2, 64, 64, 0, 13, 0, 0, 30, "f32", 10000.0, 1.0),
        ("softcap_window_f16", 4, 4, 2, 64, 32, 0, 50, 4, 16, 24, "f16", 10000.0, 1.0),
        ("softcap_prefill_g2_neox", 7, 4, 2, 16, 16, 1, 5, 0, 0, 16, "f32", 10000.0, 1.0),
    ]
    for name, T, H, KVH, D, rd, neox, rows, sink, window, cap, ct, base, rscale in specs:
        softcap = softcaps.get(name, 0.0)
        scale = float(np.float32(1.0 / np.sqrt(D)))
        q = uniform(r, (T, H * D), 2.5).astype(np.float32).astype(np.float64)
        kshape = [cap, KVH * D]
        if cap * KVH * D > 2000:
            # power-of-two scales: the Go loader rounds xorshift values to f32 before
            # f16, which only matches numpy's direct rounding when the f32 step is exact
            ke, K = xorshift_array(ct, kshape, seed, 2.0)
            ve, V = xorshift_array(ct, kshape, seed + 1, 1.0)
            seed += 2
        else:
            dt = {"f32": np.float32, "f16": np.float16}[ct]
            K = uniform(r, kshape, 2.5).astype(dt).astype(np.float64)
            V = uniform(r, kshape, 1.0).astype(dt).astype(np.float64)
            ke, ve = array(ct, K), array(ct, V)
        want, max_pos = reference(q, K, V, T, H, KVH, D, rd, neox, rows, sink, window, cap, scale, base, rscale, softcap)
        params = {"T": T, "heads": H, "kv_heads": KVH, "head_dim": D, "rope_dim": rd, "neox": neox, "rows": rows,
                  "sink": sink, "window": window, "cap": cap, "scale": scale, "cache": ct,
                  "base": base, "rope_scale": rscale, "max_pos": max_pos, "softcap": softcap}
        out.append(vector("attention/%s/%s" % (ct, name), "attention", params,
                          {"q": array("f32", q), "k": ke, "v": ve}, {"out": output(want, 0, 1e-5)}))
    return out
