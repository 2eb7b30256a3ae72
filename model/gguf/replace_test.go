package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/freqkv/freqkv/model/ggml"
)

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestWithTensors(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, []KV{{Key: "general.architecture", Value: "llama"}}, []WriteTensor{
		{Name: "a", Dims: []uint64{2}, Type: ggml.F32, Data: f32bytes(1, 2)},
		{Name: "b", Dims: []uint64{2, 2}, Type: ggml.F32, Data: f32bytes(3, 4, 5, 6)},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	half := make([]byte, 8) // 4 f16 zeros
	nf, err := f.WithTensors([]WriteTensor{{Name: "b", Dims: []uint64{2, 2}, Type: ggml.F16, Data: half}})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := nf.String("general.architecture"); s != "llama" {
		t.Errorf("metadata lost: %q", s)
	}
	a, _ := nf.Tensor("a")
	if d, err := nf.TensorData(a); err != nil || !bytes.Equal(d, f32bytes(1, 2)) {
		t.Errorf("untouched tensor: %v %v", d, err)
	}
	b, _ := nf.Tensor("b")
	if d, err := nf.TensorData(b); err != nil || b.Type != ggml.F16 || !bytes.Equal(d, half) {
		t.Errorf("replaced tensor: %v %v %v", b.Type, d, err)
	}
	if ob, _ := f.Tensor("b"); ob.Type != ggml.F32 {
		t.Errorf("the original file changed: %v", ob.Type)
	}
	for _, bad := range [][]WriteTensor{
		{{Name: "c", Dims: []uint64{1}, Type: ggml.F32, Data: f32bytes(1)}},
		{{Name: "a", Dims: []uint64{2}, Type: ggml.F32, Data: f32bytes(1)}},
		{{Name: "a", Dims: []uint64{2}, Type: ggml.F32, Data: f32bytes(1, 2)}, {Name: "a", Dims: []uint64{2}, Type: ggml.F32, Data: f32bytes(1, 2)}},
		{{Name: "a", Dims: []uint64{3}, Type: ggml.Q8_0, Data: nil}},
	} {
		if _, err := f.WithTensors(bad); err == nil {
			t.Errorf("%v: no error", bad[0].Name)
		} else {
			t.Log(err)
		}
	}
	if err := nf.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.TensorData(a); err != ErrClosed {
		t.Errorf("closing the new file left the original open: %v", err)
	}
}
