// Shared by attention_train.wgsl, attention_train_dq.wgsl and attention_train_dkv.wgsl
// (spliced in by #include; not a kernel): the parameter block of the training attention
// and its visibility rule. The including file declares p and WG.
//
// Layout: q, out, dout, dq f32 [t, heads, D]; k, v, dk, dv f32 [prefix + t, kv_heads, D]
// (prefix rows first, then the group's own rows); stats f32 [t, heads, 2] = (logsumexp of
// the scaled scores, delta = sum(dout * out)). Query head h reads KV head h / G.
// Chunks: llvmpipe (lavapipe) stops every loop of an invocation once their iterations
// together reach 65535 (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS, shared by all loops), so a
// long loop silently ends early. The launchers split the key (forward, dq) or query (dkv)
// loop into dispatches of [lo, hi) that stay under that budget, carrying partial results
// in the outputs.
// Visibility: query t sees key rows j < prefix + t + 1 (every prefix row, and its own
// rows causally). Keys and queries arrive rotated (post-RoPE): positions are the caller's.

struct Params {
  t: u32,          // queries (own rows)
  prefix: u32,     // prefix rows every query sees
  heads: u32,
  kv_heads: u32,
  scale: f32,      // score = scale * q . k
  acc_prefix: u32, // dkv: 1 adds into dk/dv rows [0, prefix), 0 overwrites them
  acc_own: u32,    // dkv: the same for rows [prefix, prefix + t)
  lo: u32,         // this dispatch's chunk: key rows [lo, hi) (forward, dq) or queries (dkv)
  hi: u32,
}

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// visible is the number of key rows query t sees.
fn visible(t: u32) -> u32 {
  return p.prefix + t + 1u;
}
