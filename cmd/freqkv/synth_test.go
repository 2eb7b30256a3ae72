package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// synth writes a model that the engine then loads and runs (the file bench/peer gives
// llama.cpp), and refuses to overwrite something that is not a regular file.
func TestSynthWritesARunnableModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	r := runCLI(t, "synth", "--preset", "tiny", "--weights", "q8_0", "-o", path)
	if r.code != 0 {
		t.Fatalf("synth: exit %d: %s", r.code, r.stderr)
	}
	r = runCLI(t, "info", path)
	if r.code != 0 || !strings.Contains(r.stdout, "Q8_0") {
		t.Fatalf("info on the synthetic model: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	ids := filepath.Join(t.TempDir(), "ids")
	if err := os.WriteFile(ids, []byte("1 300 301\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "generate", "-m", path, "-n", "4", "--tokens", ids)
	if r.code != 0 {
		t.Fatalf("generate on the synthetic model: exit %d: %s", r.code, r.stderr)
	}
	r = runCLI(t, "synth", "--preset", "tiny", "-o", "/dev/null")
	if r.code != 2 || !strings.Contains(r.stderr, "not a regular file") {
		t.Fatalf("synth -o /dev/null: exit %d, stderr %q; want exit 2 and a refusal", r.code, r.stderr)
	}
}
