#!/usr/bin/env bash
# Builds bin/freqkv, installing what is missing on Debian/Ubuntu when run as
# root (or saying exactly what to install otherwise).
#   ./build.sh          install deps, build bin/freqkv
#   ./build.sh test     install deps, build, vet, run every test (+ a short fuzz)
#   ./build.sh bench    install deps, build, run the Go benchmarks
set -euo pipefail
cd "$(dirname "$0")"

need_pkgs=()
command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc libc6-dev)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need_pkgs+=(libvulkan1)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || need_pkgs+=(mesa-vulkan-drivers)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "build.sh: installing ${need_pkgs[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
	else
		echo "build.sh: missing packages; install them with:" >&2
		echo "  sudo apt-get install -y ${need_pkgs[*]}" >&2
		exit 1
	fi
fi
if ! command -v go >/dev/null 2>&1; then
	echo "build.sh: Go is not installed (need Go 1.26+: https://go.dev/dl/)" >&2
	exit 1
fi

export CGO_ENABLED=1
mkdir -p bin
go build -trimpath -o bin/freqkv ./cmd/freqkv

case "${1:-}" in
"")
	echo "built bin/freqkv" >&2
	;;
test)
	# go.mod and go.sum must be what `go mod tidy` makes them (direct dependencies
	# marked as such, no missing or stale sums).
	if ! go mod tidy -diff >/dev/null; then
		echo "build.sh: go.mod/go.sum are not tidy; run 'go mod tidy' and commit the result:" >&2
		go mod tidy -diff >&2 || true
		exit 1
	fi
	go vet ./...
	# Kernel tests share one device per package; packages run one at a time
	# so lavapipe's threads are not oversubscribed on small machines.
	go test -p 1 -count=1 -timeout 30m ./...
	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 20s ./model/gguf
	go test -run '^$' -fuzz '^FuzzGGUFVocab$' -fuzztime 10s ./model/tokenizer
	;;
bench)
	go test -p 1 -run '^$' -bench . -benchtime 3x ./...
	;;
*)
	echo "usage: ./build.sh [test|bench]" >&2
	exit 2
	;;
esac
