#!/usr/bin/python3
"""PyTorch (CPU) peer of `freqkv finetune`: the same training step on the same GGUF file.

Loads a llama-architecture GGUF, builds the LLaMA forward in torch (RMSNorm, RoPE on adjacent
pairs as llama.cpp's `llama` architecture, GQA, SwiGLU, tied or untied classifier) and runs the
step `freqkv finetune` runs on one sequence of T+1 tokens: LoRA (rank r, alpha a) on q, k, v, o
with A drawn exactly as train/ draws it (Go's math/rand/v2 PCG-DXSM, seeded, uniform in
+-1/sqrt(in)) and B zero, the token embedding and every RMSNorm weight trainable, mean
next-token NLL, global gradient-norm clipping, AdamW (0.9, 0.999, 1e-8) after a linear warm-up.
The cache policy in the forward is `full` (causal attention over the sequence) or `freqkv`
(the grouped forward: the first N tokens causally, then groups of L-m tokens over [sinks,
compressed rows, recent rows] plus their own rows; every layer's K (before RoPE) and V
compressed between groups by y = sqrt(m/L) DCT-III_m(DCT-II_L(x)[:m]), as a matrix; positions
are cache rows). Autograd carries the gradient through the compressions.

After every step it times a forward-only pass (the loss, no gradients) over the same
sequence, as `freqkv finetune --eval-every 1` with the same text does. Output: JSON lines
(start, step, forward, done) on stdout, each step and forward with its wall and CPU seconds
(time.process_time: every thread of the process).

    trainpeer.py MODEL.gguf --tokens IDS.txt [--ctx 2048] [--cache full|freqkv] [--cache-size 512]
                 [--steps 3] [--threads 1] [--compare ADAPTER.gguf]

A developer tool (bench/trainpeer/run.sh drives it); needs /usr/bin/python3 with python3-torch.
"""

import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("trainpeer: needs PyTorch for this python (Debian: apt-get install python3-torch; run it with /usr/bin/python3)")


def die(msg, code=1):
    print(f"trainpeer: {msg}", file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------- Go's math/rand/v2 PCG

class GoPCG:
    """math/rand/v2's PCG (128-bit LCG, DXSM output) and Rand.Float64."""

    _MUL = (2549297995355413924 << 64) | 4865540595714422341
    _INC = (6364136223846793005 << 64) | 1442695040888963407
    _M128 = (1 << 128) - 1
    _M64 = (1 << 64) - 1

    def __init__(self, seed1, seed2):
        self.state = ((seed1 & self._M64) << 64) | (seed2 & self._M64)

    def uint64(self):
        self.state = (self.state * self._MUL + self._INC) & self._M128
        hi, lo = self.state >> 64, self.state & self._M64
        hi ^= hi >> 32
        hi = (hi * 0xDA942042E4DD58B5) & self._M64
        hi ^= hi >> 48
        return (hi * (lo | 1)) & self._M64

    def float64(self):
        return (self.uint64() & ((1 << 53) - 1)) / float(1 << 53)


def lora_init(rng, rank, n_in):
    """train.loraInit: A uniform in +-1/sqrt(in), drawn in float64, stored as float32."""
    bound = 1 / math.sqrt(n_in)
    a = np.fromiter(((2 * rng.float64() - 1) * bound for _ in range(rank * n_in)), dtype=np.float64, count=rank * n_in)
    return a.astype(np.float32).reshape(rank, n_in)


# ---------------------------------------------------------------- the schedule (train.Plan)

def plan(policy, T, N, S, R, g):
    """Segments (start, tokens, prefix rows, compress after) of a sequence of T tokens."""
    if policy == "full":
        return [[0, T, 0, False]], None
    L = N - S - R
    m = int(math.floor(L * g))
    if L < 2 or m < 1 or m >= L:
        die(f"freqkv N={N} S={S} R={R} g={g}: span {L} and kept length {m} need 1 <= m < L", 2)
    first = min(T, N)
    segs = [[0, first, 0, False]]
    start = first
    while start < T:
        segs[-1][3] = True
        rows = S + m + R
        n = min(N - rows, T - start)
        segs.append([start, n, rows, False])
        start += n
    return segs, (S, L, m, R)


def dct2_ortho(n):
    """The orthonormal DCT-II matrix (n x n), float64: X = D x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] *= np.sqrt(0.5)
    return d


def compress_matrix(L, m):
    """y = sqrt(m/L) * DCT-III_m(DCT-II_L(x)[:m]) as an (m x L) matrix (float64)."""
    return np.sqrt(m / L) * (dct2_ortho(m).T @ dct2_ortho(L)[:m])


# ---------------------------------------------------------------- the model

class Peer:
    def __init__(self, path, args):
        g = gguf.GGUF(path)
        arch = g.get("general.architecture")
        if arch != "llama":
            die(f"{path}: architecture {arch!r}; this peer builds the llama forward only", 2)
        for key in ("llama.rope.scaling.type", "llama.attention.sliding_window", "llama.attention.key_length"):
            if key in g.kv and not (key.endswith("scaling.type") and g.kv[key] == "none"):
                die(f"{path}: {key} = {g.kv[key]}: not rebuilt by this peer", 2)
        if g.has("rope_freqs.weight"):
            die(f"{path}: rope_freqs.weight (Llama 3 rope) is not rebuilt by this peer", 2)
        self.dim = int(g.get("llama.embedding_length"))
        self.layers = int(g.get("llama.block_count"))
        self.heads = int(g.get("llama.attention.head_count"))
        self.kv_heads = int(g.get("llama.attention.head_count_kv", self.heads))
        self.hd = self.dim // self.heads
        self.rope_dim = int(g.get("llama.rope.dimension_count", self.hd))
        self.base = float(g.get("llama.rope.freq_base", 10000.0))
        self.eps = float(g.get("llama.attention.layer_norm_rms_epsilon", 1e-5))
        self.tied = not g.has("output.weight")
        t = lambda name: torch.from_numpy(np.ascontiguousarray(g.tensor(name)))  # noqa: E731

        self.embd = t("token_embd.weight")
        self.vocab = self.embd.shape[0]
        self.out = None if self.tied else t("output.weight")
        self.out_norm = t("output_norm.weight")
        self.blocks = []
        for l in range(self.layers):
            p = f"blk.{l}."
            self.blocks.append({k: t(p + k + ".weight") for k in
                                ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")})
        self.weight_bytes = sum(int(np.prod(d)) * 4 for d, _, _ in g.tensors.values())

        # trainable tensors, in train/'s order and with its GGUF names
        self.params, self.decay = {}, set()
        rank, self.scale = args.lora_rank, (args.lora_alpha / args.lora_rank if args.lora_rank > 0 else 0.0)
        rng = GoPCG(args.seed, 0x6C6F7261)
        if args.train_embeddings:
            self.embd.requires_grad_(True)
            self.params["token_embd.weight"] = self.embd
        self.lora = [dict() for _ in range(self.layers)]
        qdim, kvd = self.heads * self.hd, self.kv_heads * self.hd
        outs = {"attn_q": qdim, "attn_k": kvd, "attn_v": kvd, "attn_output": self.dim}
        ins = {"attn_q": self.dim, "attn_k": self.dim, "attn_v": self.dim, "attn_output": qdim}
        for l, b in enumerate(self.blocks):
            p = f"blk.{l}."
            if args.train_norms:
                b["attn_norm"].requires_grad_(True)
                self.params[p + "attn_norm.weight"] = b["attn_norm"]
            if rank > 0:
                for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
                    a = torch.from_numpy(lora_init(rng, rank, ins[name])).requires_grad_(True)
                    bb = torch.zeros(outs[name], rank, requires_grad=True)
                    self.lora[l][name] = (a, bb)
                    self.params[p + name + ".weight.lora_a"] = a
                    self.params[p + name + ".weight.lora_b"] = bb
                    self.decay.update([p + name + ".weight.lora_a", p + name + ".weight.lora_b"])
            if args.train_norms:
                b["ffn_norm"].requires_grad_(True)
                self.params[p + "ffn_norm.weight"] = b["ffn_norm"]
        if args.train_norms:
            self.out_norm.requires_grad_(True)
            self.params["output_norm.weight"] = self.out_norm
        self.initial = {k: v.detach().clone() for k, v in self.params.items()}

        self.policy = args.cache
        n = args.cache_size if args.cache == "freqkv" else args.ctx
        self.segments, self.geom = plan(args.cache, args.ctx, n, args.sink, args.recent, args.ratio)
        if self.geom:
            S, L, m, R = self.geom
            self.cmat = torch.from_numpy(compress_matrix(L, m).astype(np.float32))
        rows = max(args.ctx, n)
        inv = self.base ** (-np.arange(0, self.rope_dim, 2, dtype=np.float64) / self.rope_dim)
        ang = np.arange(rows, dtype=np.float64)[:, None] * inv[None, :]
        self.cos = torch.from_numpy(np.cos(ang).astype(np.float32))  # [rows, rope_dim/2]
        self.sin = torch.from_numpy(np.sin(ang).astype(np.float32))

    def rope(self, x, pos0, n):
        """Rotates x [n, heads, hd] at positions pos0..pos0+n-1, adjacent pairs (2i, 2i+1)."""
        c = self.cos[pos0 : pos0 + n, None, :]
        s = self.sin[pos0 : pos0 + n, None, :]
        r = x[..., : self.rope_dim]
        x0, x1 = r[..., 0::2], r[..., 1::2]
        rot = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)
        if self.rope_dim == x.shape[-1]:
            return rot
        return torch.cat((rot, x[..., self.rope_dim :]), dim=-1)

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def proj(self, h, l, name):
        y = h @ self.blocks[l][name].t()
        if name in self.lora[l]:
            a, b = self.lora[l][name]
            y = y + self.scale * ((h @ a.t()) @ b.t())
        return y

    def attend(self, q, k, v, prefix):
        """q [n, H, hd] rotated at rows prefix.., k/v [P+n, KVH, hd] (k rotated at rows 0..):
        every prefix row visible, own rows causally."""
        n, P = q.shape[0], prefix
        grp = self.heads // self.kv_heads
        # q head h reads kv head h // grp: [KVH, grp*n, hd] against [KVH, P+n, hd], one bmm
        qh = (q * (1.0 / math.sqrt(self.hd))).reshape(n, self.kv_heads, grp, self.hd).permute(1, 2, 0, 3).reshape(self.kv_heads, grp * n, self.hd)
        kh = k.permute(1, 2, 0)  # [KVH, hd, P+n]
        vh = v.permute(1, 0, 2)  # [KVH, P+n, hd]
        scores = torch.bmm(qh, kh).view(self.kv_heads, grp, n, P + n)
        mask = torch.ones(n, P + n, dtype=torch.bool).triu_(P + 1)
        scores.masked_fill_(mask, float("-inf"))  # in place: bmm's backward does not read its output
        o = torch.bmm(torch.softmax(scores, dim=-1).view(self.kv_heads, grp * n, P + n), vh)
        o = o.view(self.kv_heads, grp, n, self.hd)
        return o.permute(2, 0, 1, 3).reshape(n, self.heads * self.hd)

    def compress(self, x):
        S, L, m, R = self.geom
        span = x[S : S + L].reshape(L, -1)
        y = (self.cmat @ span).reshape(m, *x.shape[1:])
        return torch.cat((x[:S], y, x[S + L :]), dim=0)

    def attention(self, q, k, v):
        T = q.shape[0]
        q = q.reshape(T, self.heads, self.hd)
        k = k.reshape(T, self.kv_heads, self.hd)
        v = v.reshape(T, self.kv_heads, self.hd)
        outs = []
        ck = cv = None
        for start, n, P, comp in self.segments:
            ks, vs = k[start : start + n], v[start : start + n]
            K = ks if P == 0 else torch.cat((ck, ks), dim=0)
            V = vs if P == 0 else torch.cat((cv, vs), dim=0)
            outs.append(self.attend(self.rope(q[start : start + n], P, n), self.rope(K, 0, P + n), V, P))
            if comp:  # keys before RoPE, every layer, K and V
                ck, cv = self.compress(K), self.compress(V)
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)

    def layer(self, x, l):
        b = self.blocks[l]
        h = self.rmsnorm(x, b["attn_norm"])
        att = self.attention(self.proj(h, l, "attn_q"), self.proj(h, l, "attn_k"), self.proj(h, l, "attn_v"))
        x = x + self.proj(att, l, "attn_output")
        h = self.rmsnorm(x, b["ffn_norm"])
        return x + (F.silu(h @ b["ffn_gate"].t()) * (h @ b["ffn_up"].t())) @ b["ffn_down"].t()

    def loss(self, ids, targets, recompute=False):
        x = self.embd[ids]
        for l in range(self.layers):
            if recompute and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(self.layer, x, l, use_reentrant=False)
            else:
                x = self.layer(x, l)
        x = self.rmsnorm(x, self.out_norm)
        logits = x @ (self.embd if self.tied else self.out).t()
        return F.cross_entropy(logits, targets)


def rate(args, step):
    if args.warmup > 0 and step <= args.warmup:
        return args.lr * step / args.warmup
    return args.lr


def compare(peer, path):
    """Norm-wise relative difference of every trained tensor, and of its change from the
    initial value, against the engine's adapter after the same steps."""
    a = gguf.GGUF(path)
    worst_v = worst_d = 0.0
    rows = []
    for name, p in peer.params.items():
        if not a.has(name):
            die(f"--compare {path}: the adapter has no tensor {name}; train the same tensors", 2)
        e = torch.from_numpy(np.ascontiguousarray(a.tensor(name))).reshape(p.shape)
        v = p.detach()
        rv = float((v - e).norm() / max(float(e.norm()), 1e-30))
        de, dv = e - peer.initial[name], v - peer.initial[name]
        rd = float((dv - de).norm() / max(float(de.norm()), 1e-30))
        worst_v, worst_d = max(worst_v, rv), max(worst_d, rd)
        rows.append({"tensor": name, "rel_value": rv, "rel_update": rd})
    return {"event": "compare", "adapter": path, "worst_rel_value": worst_v, "worst_rel_update": worst_d, "tensors": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="GGUF model (llama architecture)")
    ap.add_argument("--tokens", required=True, help="file of whitespace-separated token ids (freqkv tokenize); the first --ctx+1 are the sequence")
    ap.add_argument("--ctx", type=int, default=2048, help="tokens per training sequence")
    ap.add_argument("--cache", choices=("full", "freqkv"), default="freqkv")
    ap.add_argument("--cache-size", type=int, default=512, help="FreqKV cache rows N")
    ap.add_argument("--sink", type=int, default=4)
    ap.add_argument("--recent", type=int, default=0)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--lora-rank", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16.0)
    ap.add_argument("--train-embeddings", type=int, choices=(0, 1), default=1)
    ap.add_argument("--train-norms", type=int, choices=(0, 1), default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--forward", type=int, choices=(0, 1), default=1, help="time a forward-only pass after each step")
    ap.add_argument("--recompute", action="store_true", help="checkpoint every layer (recompute in the backward, as the engine does)")
    ap.add_argument("--compare", metavar="ADAPTER", help="after the steps, compare every trained tensor with this adapter of freqkv finetune")
    args = ap.parse_args()
    if args.steps < 1 or args.ctx < 2 or args.threads < 1 or args.lora_rank < 0:
        die("--steps, --threads must be at least 1, --ctx at least 2, --lora-rank not negative", 2)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    try:
        with open(args.tokens) as f:
            ids = [int(x) for x in f.read().split()]
    except (OSError, ValueError) as e:
        die(f"--tokens {args.tokens}: {e}", 2)
    if len(ids) < args.ctx + 1:
        die(f"--tokens {args.tokens} has {len(ids)} ids, fewer than --ctx {args.ctx} + 1", 2)
    try:
        peer = Peer(args.model, args)
    except (gguf.GGUFError, OSError) as e:
        die(str(e), 2)
    if max(ids[: args.ctx + 1]) >= peer.vocab or min(ids[: args.ctx + 1]) < 0:
        die(f"--tokens: an id is outside the model's vocabulary of {peer.vocab}", 2)
    seq = torch.tensor(ids[: args.ctx + 1], dtype=torch.long)
    inp, tgt = seq[:-1], seq[1:]
    params = list(peer.params.values())
    groups = [{"params": [p for k, p in peer.params.items() if k in peer.decay], "weight_decay": args.weight_decay},
              {"params": [p for k, p in peer.params.items() if k not in peer.decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    emit = lambda d: print(json.dumps(d), flush=True)  # noqa: E731
    emit({"event": "start", "engine": "torch", "torch": torch.__version__, "threads": args.threads, "cache": args.cache,
          "segments": len(peer.segments), "compressions": sum(1 for s in peer.segments if s[3]),
          "params": sum(p.numel() for p in params), "tokens": args.ctx})
    begin = time.perf_counter()
    for step in range(1, args.steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = peer.loss(inp, tgt, args.recompute)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(params, args.clip))
        else:
            norm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)))
        for g in opt.param_groups:
            g["lr"] = rate(args, step)
        opt.step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        emit({"event": "step", "step": step, "loss": float(loss), "grad_norm": norm, "lr": rate(args, step),
              "seconds": dt, "cpu_s": dc, "tok_per_s": args.ctx / dt})
        if args.forward:
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.no_grad():
                fl = float(peer.loss(inp, tgt))
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            emit({"event": "forward", "step": step, "loss": fl, "seconds": dt, "cpu_s": dc, "tok_per_s": args.ctx / dt})
    done = {"event": "done", "seconds": time.perf_counter() - begin,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    emit(done)
    if args.compare:
        emit(compare(peer, args.compare))


if __name__ == "__main__":
    main()
