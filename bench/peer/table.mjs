// Reads results.jsonl from run.sh and prints one table: per weight type and engine/backend,
// the medians over rounds of prefill tok/s of the prompt, time to first token, and prefill
// and decode tok/s at each fill, with freqkv's ratio against each llama.cpp backend.
import { readFileSync } from "node:fs";

const rows = readFileSync(process.argv[2], "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const key = (r) => `${r.type}|${r.engine === "freqkv" ? "freqkv" : "llama.cpp " + r.backend}`;
const fills = [...new Set(rows.map((r) => r.fill_tokens))].sort((a, b) => a - b);
const groups = new Map();
for (const r of rows) {
  if (!groups.has(key(r))) groups.set(key(r), []);
  groups.get(key(r)).push(r);
}
const stat = (rs) => {
  const out = {
    prefill: median(rs.map((r) => r.prefill_tok_s)),
    ttft: median(rs.map((r) => r.ttft_s)),
  };
  for (const f of fills) {
    const at = rs.filter((r) => r.fill_tokens === f);
    out["p" + f] = median(at.map((r) => r.fill_prefill_tok_s));
    out["d" + f] = median(at.map((r) => r.decode_tok_s));
  }
  return out;
};
const pad = (s, n) => String(s).padStart(n);
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");
let head = `${"type".padEnd(6)} ${"engine".padEnd(20)} ${pad("prefill tok/s", 14)} ${pad("TTFT s", 8)}`;
for (const f of fills) head += ` ${pad("prefill@" + f, 13)} ${pad("decode@" + f, 12)}`;
head += "   freqkv/this (prefill, TTFT, then prefill and decode at each fill)";
console.log(head);
const types = [...new Set(rows.map((r) => r.type))];
for (const t of types) {
  const mine = groups.get(`${t}|freqkv`);
  const ms = mine ? stat(mine) : null;
  for (const [k, rs] of groups) {
    if (!k.startsWith(t + "|")) continue;
    const s = stat(rs);
    let line = `${t.padEnd(6)} ${k.split("|")[1].padEnd(20)} ${pad(f1(s.prefill), 14)} ${pad(f2(s.ttft), 8)}`;
    for (const f of fills) line += ` ${pad(f1(s["p" + f]), 13)} ${pad(f1(s["d" + f]), 12)}`;
    if (ms && !k.endsWith("|freqkv")) {
      line += `   ${f2(ms.prefill / s.prefill)}x ${f2(ms.ttft / s.ttft)}x`;
      for (const f of fills) line += ` ${f2(ms["p" + f] / s["p" + f])}x ${f2(ms["d" + f] / s["d" + f])}x`;
    }
    console.log(line);
  }
}
console.log(`medians of ${Math.max(...rows.map((r) => r.round))} interleaved rounds`);
