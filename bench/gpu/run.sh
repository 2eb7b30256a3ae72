#!/usr/bin/env bash
# One unattended run on a machine with an NVIDIA GPU (or any Vulkan GPU), in under 8
# minutes, writing one results file: the adapter, the kernel vectors, the matvec kernel
# benchmarks (GB/s of weights, to set against the card's bandwidth), freqkv bench on the
# medium synthetic model and a Llama-2-7B-shaped one at 4K/16K/32K with full and freqkv
# caches, and llama.cpp's CUDA and Vulkan builds (node-llama-cpp) on the same files.
#
#   bench/gpu/run.sh [OUTDIR]                 (default: $OUT, else /tmp/freqkv-gpu)
#
# Go is optional on the GPU machine: prepare here with `bench/gpu/run.sh --prepare`, which
# builds bin/freqkv and the kernel benchmark binary into bench/gpu/bin, then carry the tree.
# llama.cpp runs only where node and bench/peer/node_modules are present (bench/peer/run.sh
# installs them); otherwise those rows are skipped with a line saying so.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bindir="$root/bench/gpu/bin"

if [ "${1:-}" = "--prepare" ]; then
	set -e
	mkdir -p "$bindir"
	(cd "$root" && CGO_ENABLED=1 go build -trimpath -o "$bindir/freqkv" ./cmd/freqkv)
	(cd "$root" && CGO_ENABLED=1 go test -c -o "$bindir/shaders.test" ./shaders)
	echo "prepared $bindir" >&2
	exit 0
fi

out="${1:-${OUT:-/tmp/freqkv-gpu}}"
mkdir -p "$out"
res="$out/gpu-results.txt"
: >"$res"
say() { echo "$@" | tee -a "$res"; }
step() { # step SECONDS TITLE CMD...: run with a time limit, output into the results file
	local limit="$1" title="$2"
	shift 2
	say ""
	say "== $title ($(date -u +%H:%M:%S))"
	timeout "$limit" "$@" 2>&1 | tee -a "$res"
	local rc=${PIPESTATUS[0]}
	[ "$rc" = 0 ] || say "(exit $rc${rc:+; 124 = over its ${limit}s limit})"
}

if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libvulkan1 >/dev/null 2>&1
	fi
fi
fk="$bindir/freqkv"
if [ ! -x "$fk" ]; then
	if command -v go >/dev/null; then
		"$0" --prepare || exit 1
	else
		echo "no bench/gpu/bin/freqkv and no Go: run 'bench/gpu/run.sh --prepare' on a build machine first" >&2
		exit 1
	fi
fi

say "freqkv GPU run, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -srm)"
command -v nvidia-smi >/dev/null && say "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
step 30 "devices" "$fk" devices
step 90 "kernel vectors" "$fk" vectors
step 90 "matvec kernel benchmarks (GB/s of weights)" "$bindir/shaders.test" -test.run '^$' -test.bench 'MatVec|MemRead|AttentionDecode' -test.benchtime 20x
for spec in "medium f16" "llama2-7b-4l q8_0" "llama2-7b-4l q4_0"; do
	set -- $spec
	model="$out/$1-$2.gguf"
	[ -f "$model" ] || "$fk" synth --preset "$1" --weights "$2" -o "$model" >/dev/null 2>&1
	step 100 "freqkv bench $1 $2, N=2048" "$fk" bench -m "$model" --ctx 4096,16384,32768 --cache full,freqkv --cache-size 2048 --decode 32
done
peer="$root/bench/peer"
if command -v node >/dev/null && [ -d "$peer/node_modules/node-llama-cpp" ]; then
	for be in cuda vulkan; do
		for spec in "medium f16" "llama2-7b-4l q8_0" "llama2-7b-4l q4_0"; do
			set -- $spec
			step 60 "llama.cpp $be $1 $2: prefill 512, decode after 4096" \
				env GGML_VK_VISIBLE_DEVICES=0 node "$peer/llamacpp.mjs" "$out/$1-$2.gguf" "$be" 8 512 4096 32
		done
	done
else
	say ""
	say "== llama.cpp: skipped (needs node and bench/peer/node_modules; run bench/peer/run.sh's npm install)"
fi
say ""
say "done $(date -u +%H:%M:%S); results in $res"
