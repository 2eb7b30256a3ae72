package gguf

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/freqkv/freqkv/model/ggml"
)

// fuzzSeeds are small valid files: every value type, nested arrays, a
// non-default alignment, tensors of block types. Truncations of them are
// added in FuzzParse; testdata/fuzz/FuzzParse holds the same seeds as files.
func fuzzSeeds(t testing.TB) [][]byte {
	rng := rand.New(rand.NewPCG(42, 42))
	small := []WriteTensor{
		{Name: "w", Dims: []uint64{2, 2}, Type: ggml.F32, Data: make([]byte, 16)},
		{Name: "q", Dims: []uint64{32}, Type: ggml.Q4_0, Data: make([]byte, 18)},
	}
	return [][]byte{
		writeFile(t, nil, nil),
		writeFile(t, []KV{{"general.architecture", "llama"}, {"llama.block_count", uint32(1)}}, small),
		writeFile(t, []KV{{AlignmentKey, uint32(8)}, {"a", []any{[]string{"x"}, []any{[]int8{-1}}}}}, small[:1]),
		writeFile(t, sampleKV(), nil),
		writeFile(t, nil, sampleTensors(rng)[:3]),
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts is
// self-consistent: every tensor's data is inside the file, and writing the
// parsed contents back yields a file that parses to the same contents.
func FuzzParse(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
		for _, n := range []int{4, 8, 24, len(seed) / 2, len(seed) - 1} {
			if n >= 0 && n < len(seed) {
				f.Add(seed[:n])
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		kv, tensors := contents(t, file)
		for i, w := range tensors {
			if uint64(len(w.Data)) != file.Tensors[i].Bytes() {
				t.Fatalf("tensor %q: %d bytes, info says %d", w.Name, len(w.Data), file.Tensors[i].Bytes())
			}
		}
		var buf bytes.Buffer
		if err := Write(&buf, kv, tensors); err != nil {
			t.Fatalf("rewriting an accepted file: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("parsing a rewritten file: %v", err)
		}
		kv2, tensors2 := contents(t, again)
		if len(kv2) != len(kv) || len(tensors2) != len(tensors) {
			t.Fatalf("rewrite changed counts: %d/%d keys, %d/%d tensors", len(kv2), len(kv), len(tensors2), len(tensors))
		}
		for i := range tensors {
			if !bytes.Equal(tensors[i].Data, tensors2[i].Data) {
				t.Fatalf("tensor %q changed in rewrite", tensors[i].Name)
			}
		}
		// A second rewrite must be byte-identical: the encoding is canonical.
		var buf2 bytes.Buffer
		if err := Write(&buf2, kv2, tensors2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatal("rewriting is not stable")
		}
	})
}
