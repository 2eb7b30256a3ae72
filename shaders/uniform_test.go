package shaders

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// uniformOf is the Go struct each kernel file's Params is filled from.
var uniformOf = map[string]any{
	"argmax.wgsl":            argmaxUniform{},
	"attention.wgsl":         attentionUniform{},
	"attention_vec4.wgsl":    attentionUniform{},
	"attention_mass.wgsl":    attentionUniform{},
	"keeprows.wgsl":          keeprowsUniform{},
	"convert.wgsl":           convertUniform{},
	"dct.wgsl":               dctUniform{},
	"elementwise.wgsl":       elementwiseUniform{},
	"embedding.wgsl":         embeddingUniform{},
	"embedding_k.wgsl":       embeddingUniform{},
	"kvstore.wgsl":           kvstoreUniform{},
	"kvquant_store.wgsl":     kvquantUniform{},
	"kvquant_load.wgsl":      kvquantUniform{},
	"loss.wgsl":              lossUniform{},
	"matmul.wgsl":            matmulUniform{},
	"matmul_k.wgsl":          matmulUniform{},
	"matmul_q.wgsl":          matmulUniform{},
	"matmul_vec4.wgsl":       matmulUniform{},
	"norm.wgsl":              normUniform{},
	"rope.wgsl":              ropeUniform{},
	"matmul_q_ux.wgsl":       matmulUniform{},
	"matmul_vec4_ux.wgsl":    matmulUniform{},
	"matmul_vec4_xtile.wgsl": matmulUniform{},
	"matmul_q_xtile.wgsl":    matmulUniform{},
	"compress_spread.wgsl":   spreadUniform{},

	"adamw.wgsl":                  adamwUniform{},
	"attention_train.wgsl":        attentionTrainUniform{},
	"attention_train_dkv.wgsl":    attentionTrainUniform{},
	"attention_train_dq.wgsl":     attentionTrainUniform{},
	"attention_window_train.wgsl": windowTrainUniform{},
	"embedding_bwd.wgsl":          embeddingBwdUniform{},
	"fill.wgsl":                   fillUniform{},
	"gradnorm.wgsl":               gradnormUniform{},
	"matmul_bwd.wgsl":             matmulBwdUniform{},
	"norm_bwd.wgsl":               normBwdUniform{},
	"swiglu_bwd.wgsl":             swigluBwdUniform{},
	"train_elementwise.wgsl":      axpyUniform{},
	"train_gemm.wgsl":             gemmUniform{},
	"xent.wgsl":                   xentUniform{},
}

var (
	paramsRE = regexp.MustCompile(`(?s)\bstruct Params \{(.*?)\n\}`)
	fieldRE  = regexp.MustCompile(`^\s*([a-z_][a-z0-9_]*)\s*:\s*([a-z0-9<>]+)\s*,?\s*(//.*)?$`)
)

// wgslFields parses the one `struct Params` of an expanded kernel source into (name, type)
// pairs in order.
func wgslFields(t *testing.T, file, src string) [][2]string {
	t.Helper()
	m := paramsRE.FindAllStringSubmatch(src, -1)
	require.Len(t, m, 1, "%s: want exactly one struct Params after #include", file)
	var out [][2]string
	for _, line := range strings.Split(m[0][1], "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "//") {
			continue
		}
		f := fieldRE.FindStringSubmatch(line)
		require.NotNil(t, f, "%s: cannot parse Params field %q", file, line)
		out = append(out, [2]string{f[1], f[2]})
	}
	return out
}

// snake is the WGSL spelling of a Go field name: kvHeads -> kv_heads.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mismatch says how a Go uniform struct differs from the parsed WGSL fields ("" if not).
func mismatch(fields [][2]string, typ reflect.Type) string {
	wgslType := map[reflect.Kind]string{reflect.Uint32: "u32", reflect.Float32: "f32"}
	if len(fields) != typ.NumField() {
		return fmt.Sprintf("WGSL Params has %d fields, %s has %d", len(fields), typ, typ.NumField())
	}
	for i, f := range fields {
		g := typ.Field(i)
		if f[0] != snake(g.Name) {
			return fmt.Sprintf("field %d: WGSL %s, Go %s.%s", i, f[0], typ, g.Name)
		}
		if f[1] != wgslType[g.Type.Kind()] {
			return fmt.Sprintf("field %s: WGSL %s, Go %s", f[0], f[1], g.Type)
		}
	}
	return ""
}

// TestUniformsMatchWGSL: every kernel file declares one struct Params whose fields match,
// by name, order and type, the Go struct its launcher packs with words.
func TestUniformsMatchWGSL(t *testing.T) {
	kernels := 0
	for _, file := range Files() {
		src, err := Source(file)
		require.NoError(t, err)
		// Fragments spliced into kernel files (kernel bodies included after the
		// includer's bindings) declare no bindings of their own.
		if !strings.Contains(src, "@compute") || !strings.Contains(src, "@binding(") {
			require.NotContains(t, uniformOf, file, "%s is not a kernel file", file)
			continue
		}
		kernels++
		u, ok := uniformOf[file]
		require.True(t, ok, "kernel file %s has no Go uniform struct in uniformOf", file)
		typ := reflect.TypeOf(u)
		require.Empty(t, mismatch(wgslFields(t, file, src), typ), file)
		require.Len(t, words(u), typ.NumField())
	}
	require.Equal(t, len(uniformOf), kernels, "uniformOf names a file that is not a kernel")
}

// The checker itself notices a wrong name, order or type.
func TestUniformCheckerCatchesDrift(t *testing.T) {
	src := "struct Params {\n  a: u32,\n  kv_heads: u32, // comment\n  scale: f32,\n}\n@compute"
	got := wgslFields(t, "x.wgsl", src)
	require.Equal(t, [][2]string{{"a", "u32"}, {"kv_heads", "u32"}, {"scale", "f32"}}, got)
	require.Equal(t, "kv_heads", snake("kvHeads"))
	require.Equal(t, "part_off", snake("partOff"))
	type good struct {
		a, kvHeads uint32
		scale      float32
	}
	type swapped struct {
		kvHeads, a uint32
		scale      float32
	}
	type wrongType struct{ a, kvHeads, scale uint32 }
	type short struct{ a, kvHeads uint32 }
	require.Empty(t, mismatch(got, reflect.TypeOf(good{})))
	require.Contains(t, mismatch(got, reflect.TypeOf(swapped{})), "field 0: WGSL a")
	require.Contains(t, mismatch(got, reflect.TypeOf(wrongType{})), "field scale: WGSL f32")
	require.Contains(t, mismatch(got, reflect.TypeOf(short{})), "3 fields")
	require.Equal(t, []uint32{1, 2, 0x3f800000}, words(good{a: 1, kvHeads: 2, scale: 1}))
	require.Panics(t, func() { words(struct{ x int }{}) })
}
