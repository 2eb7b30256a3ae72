"""Training attention (attention_train*.wgsl): a group of T queries over P prefix rows plus
its own T rows causally, GQA, post-RoPE inputs, in float64.

Forward: s[t,h,j] = scale * q[t,h] . k[j, h // G] for j < P + t + 1; out = softmax(s) @ v;
lse = logsumexp(s). Backward, from the explicit softmax Jacobian (not the FlashAttention
recurrences the kernels use): dP = dout . v; dS = P * (dP - sum_j P dP); dq = scale dS k;
dk = scale dSᵀ q; dv = Pᵀ dout, summed over the G heads sharing a KV head. The Jacobian is
checked against central finite differences of <out, dout> on the first cases.
Params T, P, heads, kv_heads, head_dim, scale, acc_prefix, acc_own. With an accumulate flag
the initial dk0/dv0 rows are random and added; rows that are overwritten hold NaN in dk0/dv0.
Tolerance: 1e-5 relative to the largest |output| (lse: 1e-6 relative; f32 sums over
<= 304 rows of <= 128 products).
"""
import numpy as np

from common import array, output, rng, uniform, vector, xorshift_array


def f32(x):
    return np.asarray(x).astype(np.float32).astype(np.float64)


def forward(q, k, v, P, scale):
    T, H, D = q.shape
    KVH = k.shape[1]
    G = H // KVH
    out = np.zeros_like(q)
    lse = np.zeros((T, H))
    probs = np.zeros((T, H, P + T))
    for t in range(T):
        n = P + t + 1
        for h in range(H):
            s = scale * k[:n, h // G] @ q[t, h]
            m = s.max()
            e = np.exp(s - m)
            probs[t, h, :n] = e / e.sum()
            lse[t, h] = m + np.log(e.sum())
            out[t, h] = probs[t, h, :n] @ v[:n, h // G]
    return out, lse, probs


def backward(q, k, v, dout, probs, scale):
    T, H, D = q.shape
    KVH = k.shape[1]
    G = H // KVH
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    for t in range(T):
        for h in range(H):
            g = h // G
            pr = probs[t, h]
            dp = v[:, g] @ dout[t, h]
            ds = pr * (dp - (pr * dp).sum())
            dq[t, h] = scale * ds @ k[:, g]
            dk[:, g] += scale * np.outer(ds, q[t, h])
            dv[:, g] += np.outer(pr, dout[t, h])
    return dq, dk, dv


def fd_check(q, k, v, dout, P, scale, grads):
    h = 1e-6
    for arr, g in zip((q, k, v), grads):
        for idx in [tuple(r) for r in np.argwhere(np.ones(arr.shape, bool))[::7]]:
            a0 = arr[idx]
            arr[idx] = a0 + h
            fp = (forward(q, k, v, P, scale)[0] * dout).sum()
            arr[idx] = a0 - h
            fm = (forward(q, k, v, P, scale)[0] * dout).sum()
            arr[idx] = a0
            assert abs((fp - fm) / (2 * h) - g[idx]) < 1e-6, (idx, (fp - fm) / (2 * h), g[idx])


def cases():
    out = []
    r = rng(1601)
    specs = [  # T, P, heads, kv_heads, head_dim, acc_prefix, acc_own
        (1, 0, 1, 1, 1, 0, 0), (3, 0, 2, 1, 4, 0, 0), (5, 4, 4, 2, 8, 1, 0), (4, 7, 6, 2, 6, 1, 1),
        (9, 12, 2, 2, 16, 0, 1), (17, 5, 4, 1, 32, 1, 0), (6, 9, 2, 1, 80, 0, 0),
        (40, 30, 2, 1, 4, 1, 1), (70, 0, 3, 3, 2, 0, 0),  # several workgroups (32 rows) per head
        # Past llvmpipe's 65535 loop iterations per invocation (shaders/attention_train.go splits
        # the loops into chunks): the dkv pass's 300 queries x 2 heads x 2 x 64 (dk, dv were
        # wrong before), the forward's and dq's 304 keys x 2 x 128; inputs from xorshift.
        (300, 0, 2, 1, 64, 0, 0), (4, 300, 1, 1, 128, 1, 0)]
    for idx, (T, P, H, KVH, D, accp, acco) in enumerate(specs):
        scale = 1.0 / np.sqrt(D)
        if T * H * D + (P + T) * KVH * D > 20000:
            seed = 1601 + 4 * idx
            (eq, q), (ek, k) = xorshift_array("f32", (T, H, D), seed, 1.5), xorshift_array("f32", (P + T, KVH, D), seed + 1, 1.5)
            (ev, v), (ed, dout) = xorshift_array("f32", (P + T, KVH, D), seed + 2), xorshift_array("f32", (T, H, D), seed + 3)
        else:
            q, k, v = f32(uniform(r, (T, H, D), 1.5)), f32(uniform(r, (P + T, KVH, D), 1.5)), f32(uniform(r, (P + T, KVH, D)))
            dout = f32(uniform(r, (T, H, D)))
            eq, ek, ev, ed = array("f32", q), array("f32", k), array("f32", v), array("f32", dout)
        o, lse, probs = forward(q, k, v, P, scale)
        dq, dk, dv = backward(q, k, v, dout, probs, scale)
        if idx < 4:
            fd_check(q, k, v, dout, P, scale, (dq, dk, dv))
        params = {"T": T, "P": P, "heads": H, "kv_heads": KVH, "head_dim": D, "scale": float(np.float32(scale)),
                  "acc_prefix": accp, "acc_own": acco}
        name = "T%d_P%d_H%d_KV%d_D%d" % (T, P, H, KVH, D)
        out.append(vector("attention_train_fwd/" + name, "attention_train_fwd", params,
                          {"q": eq, "k": ek, "v": ev},
                          {"out": output(o, 0, 1e-5), "lse": output(lse, 0, 1e-6)}))
        o32, lse32 = f32(o), f32(lse)
        # the backward gets the forward's f32 results; recompute the reference from them
        stats0 = np.stack([lse32, np.full_like(lse32, np.nan)], axis=-1)
        delta = (dout * o32).sum(-1)
        ins = {"q": eq, "k": ek, "v": ev, "out": array("f32", o32), "dout": ed, "stats0": array("f32", stats0)}
        if accp or acco:
            dk0, dv0 = f32(uniform(r, k.shape)), f32(uniform(r, v.shape))
            if not accp:
                dk0[:P], dv0[:P] = np.nan, np.nan
            if not acco:
                dk0[P:], dv0[P:] = np.nan, np.nan
            ins["dk0"], ins["dv0"] = array("f32", dk0), array("f32", dv0)
            dk = dk + np.nan_to_num(dk0)
            dv = dv + np.nan_to_num(dv0)
        out.append(vector("attention_train_bwd/" + name, "attention_train_bwd", params, ins,
                          {"dq": output(dq, 0, 1e-5), "dk": output(dk, 0, 1e-5), "dv": output(dv, 0, 1e-5),
                           "stats": output(np.stack([lse32, delta], axis=-1), 0, 1e-6)}))
    return out
