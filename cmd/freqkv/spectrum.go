package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/llama"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func init() {
	register(command{name: "spectrum", summary: "energy of K and V per DCT frequency per layer (FreqKV's observation)", run: runSpectrum})
}

// spectrum is the energy per DCT-II frequency (sequence axis) of a block of
// rows, summed over channels and normalised to sum to 1.
func spectrum(rows [][]float32) []float64 {
	l := len(rows)
	e := make([]float64, l)
	col := make([]float64, l)
	for c := range rows[0] {
		for r := range rows {
			col[r] = float64(rows[r][c])
		}
		for k, x := range freqkv.DCT2Ortho(col) {
			e[k] += x * x
		}
	}
	total := 0.0
	for _, x := range e {
		total += x
	}
	for k := range e {
		e[k] /= total
	}
	return e
}

func keptEnergy(e []float64, ratio float64) float64 {
	m := int(math.Floor(float64(len(e)) * ratio))
	s := 0.0
	for _, x := range e[:m] {
		s += x
	}
	return s
}

type layerSpectrum struct {
	Layer int       `json:"layer"`
	K     []float64 `json:"k"`
	V     []float64 `json:"v"`
	KKept float64   `json:"k_kept"`
	VKept float64   `json:"v_kept"`
}

func runSpectrum(args []string) error {
	fs := newFlags("spectrum", "-m MODEL (--text FILE | --tokens FILE) [--ctx L] [--ratio G] [--layers] [-o out.png|out.svg] [--csv FILE] [--json]",
		"Measures the paper's key observation: runs the first L tokens through the model with a full\ncache, takes the DCT-II of every key (before RoPE) and value channel along the sequence,\nand reports the energy per frequency per layer and the share kept by a compression at ratio G.")
	var mf modelFlags
	mf.add(fs)
	mf.addLoRA(fs)
	var in inputFlags
	in.add(fs)
	ctxLen := fs.Int("ctx", 0, "tokens to analyse (default: the model's trained context)")
	ratio := fs.Float64("ratio", 0.5, "retaining ratio G whose kept energy is reported")
	perLayer := fs.Bool("layers", false, "print and plot every layer (default: the mean over layers)")
	out := fs.StringP("output", "o", "", "plot file: .png or .svg")
	csvPath := fs.String("csv", "", "write energy per frequency per layer as CSV")
	asJSON := fs.Bool("json", false, "print JSON")
	kvType := fs.String("kv", "f32", "KV storage for the analysis run: f32 or f16")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *ctxLen < 0 {
		return usagef("--ctx %d must not be negative (0: the model's trained context)", *ctxLen)
	}
	if !(*ratio > 0 && *ratio < 1) {
		return usagef("--ratio %v must be in (0, 1)", *ratio)
	}
	if *out != "" {
		switch strings.ToLower(filepath.Ext(*out)) {
		case ".png", ".svg":
		default:
			return usagef("-o %s: the plot must be .png or .svg", *out)
		}
	}
	if err := outfile.Check([]outfile.Named{{Name: "-o", Path: *out}, {Name: "--csv", Path: *csvPath}}, in.files(&mf)); err != nil {
		return usagef("%v", err)
	}
	dev, m, ids, err := in.loadWithInput(&mf, *asJSON)
	if err != nil {
		return err
	}
	defer dev.Close()
	l := *ctxLen
	if l == 0 {
		l = m.H.ContextLength
	}
	l = min(l, len(ids))
	if l < 2 {
		return usagef("need at least 2 tokens, have %d", len(ids))
	}
	st, err := storage(dev, *kvType)
	if err != nil {
		return err
	}
	ctx, err := m.NewContext(llama.ContextOptions{Cache: kvcache.Spec{Kind: kvcache.Full, Size: l, Storage: st}})
	if err != nil {
		return err
	}
	defer ctx.Release()
	if err := ctx.Prefill(ids[:l]); err != nil {
		return err
	}
	var layers []layerSpectrum
	for i := 0; i < m.H.Layers; i++ {
		k, v, err := ctx.ReadKV(i)
		if err != nil {
			return err
		}
		ls := layerSpectrum{Layer: i, K: spectrum(k), V: spectrum(v)}
		ls.KKept, ls.VKept = keptEnergy(ls.K, *ratio), keptEnergy(ls.V, *ratio)
		layers = append(layers, ls)
	}
	mean := layerSpectrum{Layer: -1, K: make([]float64, l), V: make([]float64, l)}
	for _, ls := range layers {
		for f := range ls.K {
			mean.K[f] += ls.K[f] / float64(len(layers))
			mean.V[f] += ls.V[f] / float64(len(layers))
		}
	}
	mean.KKept, mean.VKept = keptEnergy(mean.K, *ratio), keptEnergy(mean.V, *ratio)
	if *csvPath != "" {
		if err := writeSpectrumCSV(*csvPath, layers); err != nil {
			return err
		}
	}
	if *out != "" {
		show := []layerSpectrum{mean}
		if *perLayer {
			show = layers
		}
		if err := plotSpectrum(*out, show, *ratio, m.H.Arch, l); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"tokens": l, "ratio": *ratio, "mean": mean, "layers": layers})
	}
	fmt.Fprintf(stdout, "%d tokens, energy kept by the lowest %.0f%% of DCT frequencies:\n", l, 100**ratio)
	if *perLayer {
		for _, ls := range layers {
			fmt.Fprintf(stdout, "  layer %2d: K %6.2f%%  V %6.2f%%\n", ls.Layer, 100*ls.KKept, 100*ls.VKept)
		}
	}
	fmt.Fprintf(stdout, "  mean    : K %6.2f%%  V %6.2f%%\n", 100*mean.KKept, 100*mean.VKept)
	if *out != "" {
		fmt.Fprintf(stdout, "plot written to %s\n", *out)
	}
	return nil
}

func writeSpectrumCSV(path string, layers []layerSpectrum) error {
	return outfile.Write(path, func(f io.Writer) error {
		w := csv.NewWriter(f)
		w.Write([]string{"layer", "frequency", "k_energy", "v_energy"})
		for _, ls := range layers {
			for k := range ls.K {
				w.Write([]string{strconv.Itoa(ls.Layer), strconv.Itoa(k), strconv.FormatFloat(ls.K[k], 'g', 8, 64), strconv.FormatFloat(ls.V[k], 'g', 8, 64)})
			}
		}
		w.Flush()
		return w.Error()
	})
}

// plotSpectrum draws the cumulative energy against the share of lowest
// frequencies kept: where a curve crosses the G line is what a compression
// at ratio G keeps.
func plotSpectrum(path string, show []layerSpectrum, ratio float64, arch string, l int) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Cumulative K/V energy over DCT frequencies (%s, %d tokens)", arch, l)
	p.X.Label.Text = "share of lowest frequencies kept (k / L)"
	p.Y.Label.Text = "share of energy kept"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Legend.Top, p.Legend.Left = false, false
	var lines []any
	for _, ls := range show {
		name := "mean"
		if ls.Layer >= 0 {
			name = fmt.Sprintf("L%d", ls.Layer)
		}
		for _, kv := range []struct {
			tag string
			e   []float64
		}{{"K", ls.K}, {"V", ls.V}} {
			pts := make(plotter.XYs, 0, len(kv.e)+1)
			pts = append(pts, plotter.XY{})
			cum := 0.0
			for k, x := range kv.e {
				cum += x
				pts = append(pts, plotter.XY{X: float64(k+1) / float64(len(kv.e)), Y: cum})
			}
			lines = append(lines, name+" "+kv.tag, pts)
		}
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return err
	}
	vl, err := plotter.NewLine(plotter.XYs{{X: ratio, Y: 0}, {X: ratio, Y: 1}})
	if err != nil {
		return err
	}
	vl.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(vl)
	p.Legend.Add(fmt.Sprintf("G = %g", ratio), vl)
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), "."))
	if err != nil {
		return err
	}
	return outfile.Write(path, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}
