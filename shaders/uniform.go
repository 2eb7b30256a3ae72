package shaders

import (
	"fmt"
	"math"
	"reflect"
)

// Uniform parameter blocks. Every kernel family declares one WGSL `struct Params` (shared
// through #include where several files use it) and one Go struct named <family>Uniform
// with the same fields in the same order: u32 as uint32, f32 as float32, a WGSL name
// kv_heads as the Go field kvHeads. words packs the Go struct in field order, and
// TestUniformsMatchWGSL checks every pair field by field, so the two cannot drift apart
// the way a hand-ordered []uint32 can.

// words packs a uniform struct, field by field in declaration order, into the words
// Recorder.Dispatch uploads. A field of another type is a programming error.
func words(u any) []uint32 {
	v := reflect.ValueOf(u)
	out := make([]uint32, v.NumField())
	for i := range out {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Uint32:
			out[i] = uint32(f.Uint())
		case reflect.Float32:
			out[i] = math.Float32bits(float32(f.Float()))
		default:
			panic(fmt.Sprintf("shaders: uniform %s field %s is %s, want uint32 or float32", v.Type(), v.Type().Field(i).Name, f.Kind()))
		}
	}
	return out
}

// b2u is a WGSL flag word.
func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
