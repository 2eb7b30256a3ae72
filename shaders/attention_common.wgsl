// Shared by attention.wgsl and attention_vec4.wgsl (spliced in by #include;
// not a kernel): which cache rows query t sees and where they live. The
// including file declares p (with rows, sink, window, cap) and WG.

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// Span is what query t (of the whole call) sees.
struct Span {
  lo: u32, // first window row
  ns: u32, // visible sinks
  n: u32,  // visible keys; the query's position is n - 1
}

fn span(t: u32) -> Span {
  let r1 = p.rows + t + 1u;
  var lo = p.sink;
  if (p.window != 0u && r1 > p.window) {
    lo = max(p.sink, r1 - p.window);
  }
  let ns = min(p.sink, r1);
  var n = ns;
  if (r1 > lo) {
    n += r1 - lo;
  }
  return Span(lo, ns, n);
}

// row is the physical cache row holding visible key kk.
fn row(s: Span, kk: u32) -> u32 {
  var j = kk;
  if (kk >= s.ns) {
    j = s.lo + (kk - s.ns);
  }
  if (j < p.cap) {
    return j;
  }
  return p.sink + (j - p.sink) % (p.cap - p.sink);
}
