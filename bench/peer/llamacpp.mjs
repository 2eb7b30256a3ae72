// One llama.cpp measurement through node-llama-cpp's prebuilt binaries, printed as one
// JSON line: prefill tok/s of a P-token prompt, prefill tok/s of the C-token fill and decode
// tok/s of D tokens after it, and the time to the first token from process start.
//
//   node llamacpp.mjs MODEL.gguf BACKEND THREADS PROMPT_TOKENS FILL_TOKENS DECODE_TOKENS
//
// BACKEND: cpu | vulkan | cuda. Token ids come from a fixed LCG over ids 3..255 (the
// synthetic models have no real text; speed does not depend on which ids), the same for
// every backend.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const t0 = performance.now();
const [model, backend, threads, promptN, fillN, decodeN] = process.argv.slice(2);
if (!decodeN) {
  console.error("usage: node llamacpp.mjs MODEL BACKEND THREADS PROMPT_TOKENS FILL_TOKENS DECODE_TOKENS");
  process.exit(2);
}
const gpu = backend === "cpu" ? false : backend;
const llama = await getLlama({ gpu, build: "never", logLevel: LlamaLogLevel.error });
const m = await llama.loadModel({ modelPath: model, gpuLayers: gpu ? "max" : 0 });

function ids(n, seed) {
  const out = [];
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(3 + (s % 253)); // any vocabulary of 256 or more
  }
  return out;
}

async function fill(n, seed) {
  const ctx = await m.createContext({
    contextSize: Math.max(n + Number(decodeN) + 16, 512),
    threads: Number(threads),
    batchSize: 512,
    sequences: 1,
  });
  const seq = ctx.getSequence();
  const t = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(ids(n, seed));
  return { ctx, seq, seconds: (performance.now() - t) / 1000 };
}

// Prefill, then the first token: time to first token counts from process start.
const p = await fill(Number(promptN), 1);
const gen = p.seq.evaluate(ids(1, 7), { temperature: 0 });
await gen.next();
const ttft = (performance.now() - t0) / 1000;
await gen.return();
await p.ctx.dispose();

// Decode after a fill of C tokens: D greedy tokens.
const f = await fill(Number(fillN), 2);
let n = 0;
const td = performance.now();
for await (const _ of f.seq.evaluate(ids(1, 9), { temperature: 0 })) {
  if (++n >= Number(decodeN)) break;
}
const decodeSeconds = (performance.now() - td) / 1000;
await f.ctx.dispose();

console.log(JSON.stringify({
  engine: "llama.cpp",
  backend,
  threads: Number(threads),
  prefill_tokens: Number(promptN),
  prefill_tok_s: Number(promptN) / p.seconds,
  ttft_s: ttft,
  fill_tokens: Number(fillN),
  fill_prefill_tok_s: Number(fillN) / f.seconds,
  decode_tokens: n,
  decode_tok_s: n / decodeSeconds,
}));
await m.dispose();
await llama.dispose();
