#!/usr/bin/env bash
# Side-by-side training speed of `freqkv finetune` and a PyTorch CPU peer (trainpeer.py) on
# the same GGUF file, the same 2048-token sequence and the same cache policy, interleaved,
# ROUNDS rounds, medians and ratios as one table, plus a parity line (the two runs' losses
# and gradient norms step by step, and every trained tensor after the last step). A developer
# tool, not part of CI: it needs /usr/bin/python3 with python3-torch (Debian).
#
#   bench/trainpeer/run.sh [OUTDIR]            (default OUTDIR: /tmp/freqkv-trainpeer)
#
# Environment: ROUNDS (3), CASES (model:policy pairs, default "stories260K:full
# stories260K:freqkv medium:full"; models: stories260K (FREQKV_TESTDATA/models) or medium
# (freqkv synth --preset medium)), THREADS (torch threads, "1 2"), CTX (2048), N (512: FreqKV
# cache rows, S = 4, R = 0, g = 0.5), STEPS (3) of which WARM (1) are a warm-up left out of
# the timing; STEPS_medium / WARM_medium override them for the medium model (1 / 0: a step
# there takes minutes). Each step is followed by a forward-only pass (the loss, no gradients)
# over the same sequence: `finetune --eval-every 1` with the training text as --eval-text on
# the engine's side. Both sides run under nice -n 10. Torch runs with OMP_WAIT_POLICY=PASSIVE
# (TORCH_OMP_WAIT_POLICY to change it): with libgomp's default spinning, two torch threads on
# an oversubscribed machine wait at every barrier for a preempted partner (a 256-token step
# measured 23 s instead of 0.04 s here). Times are wall clock and CPU seconds (cpuwatch.py
# for freqkv, time.process_time for torch): tokens per CPU-second hold up under load.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/bench/trainpeer"
out="${1:-/tmp/freqkv-trainpeer}"
ROUNDS="${ROUNDS:-3}"
CASES="${CASES:-stories260K:full stories260K:freqkv medium:full}"
THREADS="${THREADS:-1 2}"
CTX="${CTX:-2048}"
N="${N:-512}"
STEPS="${STEPS:-3}"
WARM="${WARM:-1}"
STEPS_medium="${STEPS_medium:-1}"
WARM_medium="${WARM_medium:-0}"
data="${FREQKV_TESTDATA:-$root/../shared}"
py=/usr/bin/python3
export OMP_WAIT_POLICY="${TORCH_OMP_WAIT_POLICY:-PASSIVE}"
mkdir -p "$out"

"$py" -c 'import torch' 2>/dev/null || { echo "run.sh: /usr/bin/python3 has no torch: apt-get install python3-torch" >&2; exit 1; }
(cd "$root" && nice -n 10 go build -o bin/freqkv ./cmd/freqkv)
fk="$root/bin/freqkv"
text="$data/text/tinystories-train.txt"
[ -f "$text" ] || { echo "run.sh: no $text: set FREQKV_TESTDATA to the shared test data" >&2; exit 1; }

model_path() {
	case "$1" in
	stories260K) echo "$data/models/stories260K.gguf" ;;
	medium)
		[ -f "$out/medium.gguf" ] || nice -n 10 "$fk" synth --preset medium -o "$out/medium.gguf" >/dev/null
		echo "$out/medium.gguf" ;;
	*) echo "run.sh: unknown model $1 (stories260K or medium)" >&2; exit 2 ;;
	esac
}

# A text whose tokens make exactly one training window (CTX+1..2*CTX tokens), so finetune's
# seeded data order has one choice: the first CTX+1 ids, which torch reads from the .ids file.
prepare() {
	local name=$1 model=$2 bytes=$((CTX * 3)) n
	for _ in 1 2 3 4 5; do
		head -c "$bytes" "$text" >"$out/$name.txt"
		"$fk" tokenize -m "$model" <"$out/$name.txt" >"$out/$name.ids"
		n=$(wc -w <"$out/$name.ids")
		if [ "$n" -gt "$CTX" ] && [ "$n" -le $((2 * CTX)) ]; then return 0; fi
		bytes=$((bytes * (CTX * 3 / 2) / n))
	done
	echo "run.sh: could not cut $text to one window of $CTX tokens for $name" >&2
	exit 1
}

results="$out/results.jsonl"
: >"$results"
for c in $CASES; do
	m=${c%%:*}
	prepare "$m" "$(model_path "$m")"
done

for round in $(seq 1 "$ROUNDS"); do
	for c in $CASES; do
		m=${c%%:*} policy=${c#*:}
		model=$(model_path "$m")
		steps=$STEPS warm=$WARM
		if [ "$m" = medium ]; then steps=$STEPS_medium warm=$WARM_medium; fi
		cache=(--cache "$policy")
		[ "$policy" = freqkv ] && cache+=(--cache-size "$N" --sink 4 --recent 0 --ratio 0.5)
		common=(--ctx "$CTX" --steps "$steps" --warmup 0 --lr 1e-3 --seed 1)
		tag="$m-$policy"
		echo "round $round: $tag freqkv" >&2
		nice -n 10 "$py" "$here/cpuwatch.py" "$fk" finetune -m "$model" --text "$out/$m.txt" --eval-text "$out/$m.txt" --eval-every 1 --eval-seqs 1 \
			"${cache[@]}" "${common[@]}" -o "$out/$tag.gguf" --json >"$out/$tag.engine.r$round.jsonl"
		"$py" "$here/table.py" --collect engine --case "$tag" --round "$round" --threads 0 --warm "$warm" \
			"$out/$tag.engine.r$round.jsonl" >>"$results"
		for th in $THREADS; do
			echo "round $round: $tag torch $th thread(s)" >&2
			cmp=()
			[ "$round" = 1 ] && [ "$th" = "${THREADS%% *}" ] && cmp=(--compare "$out/$tag.gguf")
			nice -n 10 "$py" "$here/trainpeer.py" "$model" --tokens "$out/$m.ids" "${cache[@]}" "${common[@]}" \
				--threads "$th" "${cmp[@]}" >"$out/$tag.torch$th.r$round.jsonl"
			"$py" "$here/table.py" --collect torch --case "$tag" --round "$round" --threads "$th" --warm "$warm" \
				"$out/$tag.torch$th.r$round.jsonl" >>"$results"
		done
	done
done
{
	echo "$(date -u +%Y-%m-%dT%H:%MZ) freqkv $(git -C "$root" rev-parse --short HEAD), torch $("$py" -c 'import torch; print(torch.__version__)') OMP_WAIT_POLICY=$OMP_WAIT_POLICY; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(
		"$fk" devices 2>/dev/null | sed -n 's/^\* 0: //p' | head -1)"
	"$py" "$here/table.py" "$results"
} | tee "$out/table.txt"
