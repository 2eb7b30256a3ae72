// Shared by attention.wgsl and attention_vec4.wgsl (spliced in by #include; not a kernel):
// the uniform block of every attention pass, filled per chunk of queries by the launcher's
// attentionUniform.

struct Params {
  t0: u32,        // first query of this chunk
  tc: u32,        // queries in this chunk
  heads: u32,
  kv_heads: u32,
  rows: u32,      // logical cache rows before the call
  sink: u32,
  window: u32,    // 0: no window
  cap: u32,       // physical cache rows
  scale: f32,     // 1 / sqrt(head dim)
  stride: u32,    // score slots per (query, head): n of the chunk's last query, rounded up to 8
  chunks: u32,    // ceil(stride / C)
  q_off: u32,     // scratch offsets (f32 elements) of qr, scores, chunk stats, partial sums
  s_off: u32,
  st_off: u32,
  part_off: u32,
  kr_off: u32,    // scratch offset of the keys rotated once per call (attention_vec4.wgsl, PRE)
  kr_rows: u32,   // cache rows rotated there: the most any query of the call sees
}
