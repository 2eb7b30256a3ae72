#!/usr/bin/env bash
# Side-by-side speed of freqkv and llama.cpp on the same GGUF files, interleaved, 3 rounds,
# medians and ratios as one table. A developer tool, not part of CI: it downloads
# llama.cpp's prebuilt binaries (node-llama-cpp, pinned in package.json) from npm.
#
#   bench/peer/run.sh [OUTDIR]            (default OUTDIR: /tmp/freqkv-peer)
#
# Environment: ROUNDS (3), TYPES (f16 q8_0 q4_0), BACKENDS (cpu1 cpu2 vulkan; add cuda on
# an NVIDIA machine), PROMPT (512), FILLS ("512 4096"), DECODE (32), PRESET (medium).
# Needs: Go (builds bin/freqkv), node >= 18 and npm. Vulkan runs need lavapipe or a GPU
# driver; GGML_VK_VISIBLE_DEVICES=0 picks the first Vulkan device for llama.cpp.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-/tmp/freqkv-peer}"
ROUNDS="${ROUNDS:-3}"
TYPES="${TYPES:-f16 q8_0 q4_0}"
BACKENDS="${BACKENDS:-cpu1 cpu2 vulkan}"
PROMPT="${PROMPT:-512}"
FILLS="${FILLS:-512 4096}"
DECODE="${DECODE:-32}"
PRESET="${PRESET:-medium}"
mkdir -p "$out"

(cd "$root" && ./build.sh >/dev/null)
fk="$root/bin/freqkv"
if [ ! -d "$root/bench/peer/node_modules/node-llama-cpp" ]; then
	(cd "$root/bench/peer" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --ignore-scripts >/dev/null)
fi
export GGML_VK_VISIBLE_DEVICES="${GGML_VK_VISIBLE_DEVICES:-0}"

# The same prompt ids for freqkv as llama.cpp uses (LCG over 3..255).
node -e '
let s=1>>>0, out=[];
for (let i=0;i<'"$PROMPT"';i++){ s=(Math.imul(s,1664525)+1013904223)>>>0; out.push(3+(s%253)); }
console.log(out.join(" "));' >"$out/prompt.tokens"

results="$out/results.jsonl"
: >"$results"
for t in $TYPES; do
	model="$out/$PRESET-$t.gguf"
	[ -f "$model" ] || "$fk" synth --preset "$PRESET" --weights "$t" -o "$model"
done

for round in $(seq 1 "$ROUNDS"); do
	for t in $TYPES; do
		model="$out/$PRESET-$t.gguf"
		# freqkv: time to first token = wall time of a whole process that prefills the
		# prompt and samples one token (model load included, as for llama.cpp).
		start=$(date +%s.%N)
		"$fk" generate -m "$model" --tokens "$out/prompt.tokens" -n 1 --cache full >/dev/null 2>&1
		end=$(date +%s.%N)
		ttft=$(echo "$end - $start" | bc -l)
		for fill in $FILLS; do
			"$fk" bench -m "$model" --ctx "$fill" --cache full --decode "$DECODE" --json |
				node -e '
let s=""; process.stdin.on("data",d=>s+=d).on("end",()=>{
  const j=JSON.parse(s); const r=(j.rows||j.results||j)[0];
  console.log(JSON.stringify({engine:"freqkv",backend:"webgpu",threads:0,type:"'"$t"'",round:'"$round"',
    fill_tokens:'"$fill"',fill_prefill_tok_s:r.prefill_tok_s,decode_tok_s:r.decode_tok_s,prefill_tok_s:('"$fill"'==='"$PROMPT"')?r.prefill_tok_s:null,ttft_s:'"$ttft"'}));});' >>"$results"
		done
		for b in $BACKENDS; do
			case "$b" in
			cpu1) be=cpu th=1 ;; cpu2) be=cpu th=2 ;; *) be="$b" th=2 ;;
			esac
			for fill in $FILLS; do
				node "$root/bench/peer/llamacpp.mjs" "$model" "$be" "$th" "$PROMPT" "$fill" "$DECODE" |
					node -e '
let s=""; process.stdin.on("data",d=>s+=d).on("end",()=>{ const j=JSON.parse(s);
  j.backend="'"$b"'"; j.type="'"$t"'"; j.round='"$round"'; console.log(JSON.stringify(j)); });' >>"$results" ||
					echo "llama.cpp $b $t fill $fill failed" >&2
			done
		done
	done
done
node "$root/bench/peer/table.mjs" "$results" | tee "$out/table.txt"
