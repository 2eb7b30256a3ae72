package kvcache

import (
	"math"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/stretchr/testify/require"
)

func TestKindNames(t *testing.T) {
	for _, k := range Kinds() {
		got, err := ParseKind(k.String())
		require.NoError(t, err)
		require.Equal(t, k, got)
		b, err := k.MarshalText()
		require.NoError(t, err)
		require.Equal(t, k.String(), string(b))
	}
	_, err := ParseKind("lru")
	require.EqualError(t, err, `kvcache: unknown cache policy "lru"; the policies are full, window, freqkv, h2o`)
}

func TestDefaultSpecsAreValid(t *testing.T) {
	for _, k := range Kinds() {
		for _, dt := range []engine.DType{engine.F16, engine.F32} {
			require.NoError(t, DefaultSpec(k, 512, dt).Validate(), "%v %v", k, dt)
		}
	}
}

// Each invalid spec names the parameters to change, and no CLI flag.
func TestValidateNamesTheParameters(t *testing.T) {
	fkv := func(size, sink, recent int, ratio float64) Spec {
		return Spec{Kind: FreqKV, Size: size, Sink: sink, Recent: recent, Ratio: ratio, Storage: engine.F16}
	}
	for _, tc := range []struct {
		spec   Spec
		params []Param
		msg    string
	}{
		{Spec{Kind: 0, Size: 8, Storage: engine.F16}, []Param{ParamKind}, "unknown cache policy Kind(0)"},
		{Spec{Kind: Full, Size: 8, Storage: engine.U32}, []Param{ParamStorage}, "KV storage u32 is not supported"},
		{Spec{Kind: Full, Size: 8, Storage: engine.Q8_0}.WithValueType(engine.U32), []Param{ParamValueStorage}, "KV value storage u32 is not supported"},
		{Spec{Kind: Full, Size: 0, Storage: engine.F16}, []Param{ParamSize}, "a full cache of 0 rows holds nothing"},
		{Spec{Kind: Window, Size: -3, Storage: engine.F16}, []Param{ParamSize}, "a window cache of -3 rows"},
		{Spec{Kind: Full, Size: 8, Sink: 4, Storage: engine.F16}, []Param{ParamSink, ParamKind}, "a full cache has no sink parameter"},
		{Spec{Kind: Window, Size: 8, Ratio: 0.5, Storage: engine.F16}, []Param{ParamRatio, ParamKind}, "a window cache has no ratio parameter"},
		{Spec{Kind: Window, Size: 8, Recent: 1, Storage: engine.F16}, []Param{ParamRecent, ParamKind}, "no recent parameter"},
		{Spec{Kind: Window, Size: 4, Sink: 4, Storage: engine.F16}, []Param{ParamSize, ParamSink}, "a window of 4 rows keeps none after its 4 sinks"},
		{Spec{Kind: Window, Size: 4, Sink: -1, Storage: engine.F16}, []Param{ParamSink}, "window sink -1 is negative"},
		{fkv(8, -1, 0, 0.5), []Param{ParamSink}, "sink -1 is negative"},
		{fkv(8, 0, -1, 0.5), []Param{ParamRecent}, "recent -1 is negative"},
		{fkv(8, 0, 0, math.NaN()), []Param{ParamRatio}, "ratio NaN is outside (0, 1)"},
		{fkv(8, 4, 4, 0.5), []Param{ParamSink, ParamRecent, ParamSize}, "sink 4 + recent 4 leaves no span"},
		{fkv(7, 4, 0, 0.3), []Param{ParamRatio, ParamSize, ParamSink, ParamRecent}, "keeps floor(3*0.3) = 0"},
		{Spec{Kind: Window, Size: 8, Keep: freqkv.KeepHigh, Storage: engine.F16}, []Param{ParamKeep, ParamKind}, "a window cache has no keep parameter"},
		{Spec{Kind: HeavyHitter, Size: 8, Sink: 1, Ratio: 0.5, Scale: freqkv.ScaleEnergy, Storage: engine.F16}, []Param{ParamScale, ParamKind}, "a h2o cache has no scale parameter"},
		{Spec{Kind: FreqKV, Size: 8, Ratio: 0.5, Scale: freqkv.Scale(9), Storage: engine.F16}, []Param{ParamScale}, "scale Scale(9)"},
		{Spec{Kind: FreqKV, Size: 8, Ratio: 0.5, Ratios: []float64{0.5, 0.5}, Storage: engine.F16}, []Param{ParamRatio, ParamRatios}, "per-layer ratios replace the ratio"},
		{Spec{Kind: FreqKV, Size: 8, Ratios: []float64{0.5, 1.5}, Storage: engine.F16}, []Param{ParamRatios}, "layer 1: retaining ratio 1.5"},
		{Spec{Kind: FreqKV, Size: 9, Ratio: 0.5, Sizes: []int{8, 6}, Storage: engine.F16}, []Param{ParamSize, ParamSizes}, "maximum 8"},
		{Spec{Kind: FreqKV, Size: 8, Sizes: []int{8, 3}, Ratios: []float64{0.5}, Storage: engine.F16}, []Param{ParamRatios, ParamSizes}, "1 per-layer ratios but 2"},
		{Spec{Kind: HeavyHitter, Size: 8, Ratio: 0.5, Ratios: []float64{0.5}, Storage: engine.F16}, []Param{ParamRatios, ParamKind}, "no ratios parameter"},
	} {
		err := tc.spec.Validate()
		var se *SpecError
		require.ErrorAs(t, err, &se, "%+v", tc.spec)
		require.Equal(t, tc.params, se.Params, "%+v", tc.spec)
		require.ErrorContains(t, err, tc.msg)
		require.NotContains(t, err.Error(), "--")
	}
}

func TestUses(t *testing.T) {
	for _, p := range Params() {
		for _, k := range Kinds() {
			want := p == ParamKind || p == ParamSize || p == ParamStorage || p == ParamValueStorage ||
				(p == ParamSink && k != Full) || ((p == ParamRecent || p == ParamRatio) && (k == FreqKV || k == HeavyHitter)) ||
				((p == ParamKeep || p == ParamScale || p == ParamRatios || p == ParamSizes) && k == FreqKV)
			require.Equal(t, want, k.Uses(p), "%v uses %v", k, p)
		}
	}
}

func TestGeometryBytes(t *testing.T) {
	g := Geometry{Layers: 32, KVHeads: 32, HeadDim: 128}
	b, err := g.Bytes(engine.F16, 4096)
	require.NoError(t, err)
	require.Equal(t, int64(2<<30), b) // LLaMA-2-7B at 4K tokens in f16: 2 GiB
	b, err = Geometry{Layers: 3, KVHeads: 4, HeadDim: 8}.Bytes(engine.F32, 100)
	require.NoError(t, err)
	require.Equal(t, int64(2*100*3*4*8*4), b)
	// stories260K (5 layers, 4 KV heads x 8) at 512 rows: 32 channels are one block a row
	st := Geometry{Layers: 5, KVHeads: 4, HeadDim: 8}
	for _, c := range []struct {
		spec Spec
		want int64
	}{
		{Spec{Storage: engine.Q8_0}, 2 * 512 * 5 * 34},
		{Spec{Storage: engine.Q4_0}, 2 * 512 * 5 * 18},
		{Spec{Storage: engine.Q8_0}.WithValueType(engine.F16), 512 * 5 * (34 + 64)},
	} {
		b, err = st.SpecBytes(c.spec, 512)
		require.NoError(t, err)
		require.Equal(t, c.want, b)
	}
}

func TestCheckMethodOnly(t *testing.T) {
	require.NoError(t, DefaultSpec(FreqKV, 64, engine.F32).CheckMethodOnly())
	require.NoError(t, DefaultSpec(Window, 64, engine.F32).CheckMethodOnly())
	for _, s := range []Spec{
		DefaultSpec(HeavyHitter, 64, engine.F32),
		{Kind: FreqKV, Size: 64, Sink: 4, Ratio: 0.5, Keep: freqkv.KeepHigh, Storage: engine.F32},
		{Kind: FreqKV, Size: 64, Sink: 4, Ratio: 0.5, Scale: freqkv.ScaleEnergy, Storage: engine.F32},
		{Kind: FreqKV, Size: 64, Sink: 4, Ratios: []float64{0.5, 0.25}, Storage: engine.F32},
	} {
		var se *SpecError
		require.ErrorAs(t, s.CheckMethodOnly(), &se, "%+v", s)
	}
}
