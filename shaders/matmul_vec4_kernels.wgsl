// The kernels of matmul_vec4.wgsl and matmul_vec4_ux.wgsl (spliced in by #include; not a
// kernel): the including file declares p, x, w, bias and y.
// A group is 4 elements (f32) or 8 (f16): one 16-byte load of W.
const GROUP = 4u + 4u * WTYPE;

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// The x group at vec4 index xi: elements [0, 4) in xa, [4, 8) in xb for f16.
struct XGroup {
  a: vec4<f32>,
  b: vec4<f32>,
}

fn xgroup(xi: u32) -> XGroup {
  if (WTYPE == 0u) {
    return XGroup(x[xi], vec4<f32>(0.0));
  }
  return XGroup(x[xi], x[xi + 1u]);
}

// Dot product of one W group with an x group, as 4 partial sums.
fn group_dot(g: vec4<u32>, xg: XGroup) -> vec4<f32> {
  if (WTYPE == 0u) {
    return xg.a * bitcast<vec4<f32>>(g);
  }
  return xg.a * vec4<f32>(unpack2x16float(g.x), unpack2x16float(g.y))
       + xg.b * vec4<f32>(unpack2x16float(g.z), unpack2x16float(g.w));
}

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j0 = ((wid.y * nwg.x + wid.x) * WG + lid.x) * R;
  let i = wid.z;
  if (j0 >= p.n || i >= p.m) {
    return;
  }
  let groups = p.k / GROUP;
  // Columns past the edge repeat the last one (in range, never stored).
  var wb: array<u32, R>;
  for (var a = 0u; a < R; a++) {
    wb[a] = min(j0 + a, p.n - 1u) * groups;
  }
  var s: array<vec4<f32>, R>;
  let xo = i * (p.k / 4u);
  for (var g = 0u; g < groups; g++) {
    let xg = xgroup(xo + g * (GROUP / 4u));
    for (var a = 0u; a < R; a++) {
      s[a] += group_dot(w[wb[a] + g], xg);
    }
  }
  for (var a = 0u; a < R; a++) {
    if (j0 + a < p.n) {
      store(i, j0 + a, hsum(s[a]));
    }
  }
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn matvec_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // The column is uniform over the workgroup, so every invocation reaches the barriers.
  let j = wid.y * nwg.x + wid.x;
  let i = wid.z;
  let groups = p.k / GROUP;
  var s = vec4<f32>(0.0);
  if (j < p.n) {
    let xo = i * (p.k / 4u);
    for (var g = lid.x; g < groups; g += WG) {
      s += group_dot(w[j * groups + g], xgroup(xo + g * (GROUP / 4u)));
    }
  }
  partial[lid.x] = hsum(s);
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    workgroupBarrier();
    if (lid.x < h) {
      partial[lid.x] += partial[lid.x + h];
    }
  }
  if (lid.x == 0u && j < p.n) {
    store(i, j, partial[0]);
  }
}

@compute @workgroup_size(WG)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i0 = wid.y * TM; // uniform over the workgroup
  let j0 = (wid.x * WG + lid.x) * TN;
  if (j0 >= p.n) {
    return;
  }
  let groups = p.k / GROUP;
  // Rows and columns past the edge repeat the last one (in range, never stored), so the
  // inner loops stay branch-free.
  var xo: array<u32, TM>;
  for (var a = 0u; a < TM; a++) {
    xo[a] = min(i0 + a, p.m - 1u) * (p.k / 4u);
  }
  var wb: array<u32, TN>;
  for (var c = 0u; c < TN; c++) {
    wb[c] = min(j0 + c, p.n - 1u) * groups;
  }
  var acc: array<array<f32, TN>, TM>;
  for (var g = 0u; g < groups; g++) {
    var wv: array<vec4<u32>, TN>;
    for (var c = 0u; c < TN; c++) {
      wv[c] = w[wb[c] + g];
    }
    for (var a = 0u; a < TM; a++) {
      let xg = xgroup(xo[a] + g * (GROUP / 4u));
      for (var c = 0u; c < TN; c++) {
        acc[a][c] += hsum(group_dot(wv[c], xg));
      }
    }
  }
  for (var a = 0u; a < TM; a++) {
    for (var c = 0u; c < TN; c++) {
      if (i0 + a < p.m && j0 + c < p.n) {
        store(i0 + a, j0 + c, acc[a][c]);
      }
    }
  }
}
