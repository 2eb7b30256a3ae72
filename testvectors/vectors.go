// Package testvectors loads shader unit vectors (README.md describes the
// language-neutral format), runs them on the GPU and judges the results.
package testvectors

import (
	"embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model/ggml"
)

// Format is the version string every vector file carries.
const Format = "freqkv-testvectors/1"

//go:embed data/*.json
var builtin embed.FS

// Array is one named input or output.
type Array struct {
	DType    string          `json:"dtype"`
	Shape    []int           `json:"shape"`
	B64      string          `json:"b64,omitempty"`
	Xorshift *XorshiftSource `json:"xorshift,omitempty"`
	Atol     float64         `json:"atol,omitempty"`
	Rtol     float64         `json:"rtol,omitempty"`
}

// XorshiftSource generates an array's values (see README.md).
type XorshiftSource struct {
	Seed  uint32  `json:"seed"`
	Scale float64 `json:"scale"`
}

// Vector is one kernel case.
type Vector struct {
	Name    string            `json:"name"`
	Kernel  string            `json:"kernel"`
	Params  map[string]any    `json:"params"`
	Inputs  map[string]*Array `json:"inputs"`
	Outputs map[string]*Array `json:"outputs"`
	Source  string            `json:"-"` // file it came from
}

type file struct {
	Format  string    `json:"format"`
	Vectors []*Vector `json:"vectors"`
}

// Parse decodes one vector file.
func Parse(name string, data []byte) ([]*Vector, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: not a vector file: %w", name, err)
	}
	if f.Format != Format {
		return nil, fmt.Errorf("%s: format %q, want %q", name, f.Format, Format)
	}
	if len(f.Vectors) == 0 {
		return nil, fmt.Errorf("%s: holds no vectors", name)
	}
	for i, v := range f.Vectors {
		if v.Kernel == "" || len(v.Outputs) == 0 {
			return nil, fmt.Errorf("%s: vector %d (%q) lacks a kernel or outputs", name, i, v.Name)
		}
		v.Source = name
	}
	return f.Vectors, nil
}

// Builtin returns the vectors compiled into the binary.
func Builtin() ([]*Vector, error) {
	var all []*Vector
	err := fs.WalkDir(builtin, "data", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := builtin.ReadFile(path)
		if err != nil {
			return err
		}
		vs, err := Parse(path, b)
		all = append(all, vs...)
		return err
	})
	return all, err
}

// Load reads vector files and directories (recursively, *.json).
func Load(paths ...string) ([]*Vector, error) {
	var all []*Vector
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("vectors: %w", err)
		}
		var files []string
		if st.IsDir() {
			err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
					files = append(files, path)
				}
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("vectors: %w", err)
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("vectors: no *.json files under %s", p)
			}
		} else {
			files = []string{p}
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("vectors: %w", err)
			}
			vs, err := Parse(f, b)
			if err != nil {
				return nil, err
			}
			all = append(all, vs...)
		}
	}
	return all, nil
}

// Int reads an integer parameter.
func (v *Vector) Int(name string) (int, error) {
	x, ok := v.Params[name]
	if !ok {
		return 0, fmt.Errorf("vector %s: missing parameter %q", v.Name, name)
	}
	f, ok := x.(float64)
	if !ok || f != math.Trunc(f) {
		return 0, fmt.Errorf("vector %s: parameter %q = %v is not an integer", v.Name, name, x)
	}
	return int(f), nil
}

// Float reads a float parameter.
func (v *Vector) Float(name string) (float64, error) {
	x, ok := v.Params[name].(float64)
	if !ok {
		return 0, fmt.Errorf("vector %s: missing or non-numeric parameter %q", v.Name, name)
	}
	return x, nil
}

// Str reads a string parameter.
func (v *Vector) Str(name string) (string, error) {
	x, ok := v.Params[name].(string)
	if !ok {
		return "", fmt.Errorf("vector %s: missing or non-string parameter %q", v.Name, name)
	}
	return x, nil
}

// Elements is the product of the shape.
func (a *Array) Elements() int {
	n := 1
	for _, s := range a.Shape {
		n *= s
	}
	return n
}

// EngineDType maps the array's dtype to the engine's.
func (a *Array) EngineDType() (engine.DType, error) {
	switch a.DType {
	case "f32":
		return engine.F32, nil
	case "f16":
		return engine.F16, nil
	case "q8_0":
		return engine.Q8_0, nil
	case "q4_0":
		return engine.Q4_0, nil
	case "q4_k":
		return engine.Q4_K, nil
	case "q5_k":
		return engine.Q5_K, nil
	case "q6_k":
		return engine.Q6_K, nil
	case "q4_1":
		return engine.Q4_1, nil
	case "q5_0":
		return engine.Q5_0, nil
	case "q5_1":
		return engine.Q5_1, nil
	case "iq4_nl":
		return engine.IQ4_NL, nil
	case "u32", "i32":
		return engine.U32, nil
	}
	return 0, fmt.Errorf("dtype %q has no device type", a.DType)
}

// Bytes returns the array's little-endian bytes, decoding or generating them.
func (a *Array) Bytes() ([]byte, error) {
	if a.Xorshift != nil {
		if a.Xorshift.Seed == 0 {
			return nil, errors.New("xorshift seed must be non-zero")
		}
		n := a.Elements()
		x := a.Xorshift.Seed
		switch a.DType {
		case "f32", "f16":
		default:
			return nil, fmt.Errorf("xorshift arrays must be f32 or f16, not %s", a.DType)
		}
		out := make([]byte, 0, 4*n)
		for i := 0; i < n; i++ {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			v := a.Xorshift.Scale * (2*float64(x>>8)/float64(1<<24) - 1)
			if a.DType == "f32" {
				out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(v)))
			} else {
				out = binary.LittleEndian.AppendUint16(out, ggml.F32ToF16(float32(v)))
			}
		}
		return out, nil
	}
	b, err := base64.StdEncoding.DecodeString(a.B64)
	if err != nil {
		return nil, fmt.Errorf("bad base64: %w", err)
	}
	want, err := a.byteLen()
	if err != nil {
		return nil, err
	}
	if len(b) != want {
		return nil, fmt.Errorf("%s %v holds %d bytes, want %d", a.DType, a.Shape, len(b), want)
	}
	return b, nil
}

func (a *Array) byteLen() (int, error) {
	n := a.Elements()
	switch a.DType {
	case "f32", "u32", "i32":
		return 4 * n, nil
	case "f16":
		return 2 * n, nil
	case "f64":
		return 8 * n, nil
	case "q8_0", "q4_0":
		if len(a.Shape) == 0 || a.Shape[len(a.Shape)-1]%32 != 0 {
			return 0, fmt.Errorf("%s arrays need rows of a multiple of 32, shape %v", a.DType, a.Shape)
		}
		if a.DType == "q8_0" {
			return n / 32 * 34, nil
		}
		return n / 32 * 18, nil
	case "q4_k", "q5_k", "q6_k":
		if len(a.Shape) == 0 || a.Shape[len(a.Shape)-1]%256 != 0 {
			return 0, fmt.Errorf("%s arrays need rows of a multiple of 256, shape %v", a.DType, a.Shape)
		}
		return n / 256 * map[string]int{"q4_k": 144, "q5_k": 176, "q6_k": 210}[a.DType], nil
	case "q4_1", "q5_0", "q5_1", "iq4_nl":
		if len(a.Shape) == 0 || a.Shape[len(a.Shape)-1]%32 != 0 {
			return 0, fmt.Errorf("%s arrays need rows of a multiple of 32, shape %v", a.DType, a.Shape)
		}
		return n / 32 * map[string]int{"q4_1": 20, "q5_0": 22, "q5_1": 24, "iq4_nl": 18}[a.DType], nil
	}
	return 0, fmt.Errorf("unknown dtype %q", a.DType)
}

// Float64s decodes a float or integer array to float64.
func (a *Array) Float64s() ([]float64, error) {
	b, err := a.Bytes()
	if err != nil {
		return nil, err
	}
	n := a.Elements()
	out := make([]float64, n)
	for i := range out {
		switch a.DType {
		case "f64":
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		case "f32":
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		case "f16":
			out[i] = float64(ggml.F16ToF32(binary.LittleEndian.Uint16(b[2*i:])))
		case "u32":
			out[i] = float64(binary.LittleEndian.Uint32(b[4*i:]))
		case "i32":
			out[i] = float64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		default:
			return nil, fmt.Errorf("cannot read %s as numbers", a.DType)
		}
	}
	return out, nil
}

// Result is the verdict on one vector.
type Result struct {
	Vector *Vector
	Shape  string
	MaxAbs float64
	MaxRel float64
	Tol    float64 // the bound max_abs had to meet
	OK     bool
	Err    error
}

// Judge compares the outputs a runner produced with the expected ones.
func Judge(v *Vector, got map[string][]float64) Result {
	res := Result{Vector: v, OK: true}
	names := make([]string, 0, len(v.Outputs))
	for n := range v.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var shapes []string
	worst := -1.0
	for _, name := range names {
		want := v.Outputs[name]
		shapes = append(shapes, fmt.Sprintf("%s%v", name, want.Shape))
		w, err := want.Float64s()
		if err != nil {
			return Result{Vector: v, Err: fmt.Errorf("output %s: %w", name, err)}
		}
		g, ok := got[name]
		if !ok || len(g) != len(w) {
			return Result{Vector: v, Err: fmt.Errorf("output %s: runner produced %d values, want %d", name, len(g), len(w))}
		}
		maxAbs, maxWant := 0.0, 0.0
		for i := range w {
			d := math.Abs(g[i] - w[i])
			if math.IsNaN(d) || math.IsInf(d, 0) {
				d = math.Inf(1) // unwritten (poisoned) or non-finite
			}
			maxAbs = max(maxAbs, d)
			maxWant = max(maxWant, math.Abs(w[i]))
		}
		tol := want.Atol + want.Rtol*maxWant
		rel := maxAbs
		if maxWant > 0 {
			rel = maxAbs / maxWant
		}
		if maxAbs > tol {
			res.OK = false
		}
		// Report the output closest to (or furthest past) its own bound, so the printed
		// error and tolerance belong to the same output.
		if ratio := maxAbs / tol; worst < 0 || ratio > worst || math.IsNaN(ratio) {
			worst = ratio
			res.MaxAbs, res.MaxRel, res.Tol = maxAbs, rel, tol
		}
	}
	res.Shape = strings.Join(shapes, " ")
	return res
}
