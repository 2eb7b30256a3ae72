package eval

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Named is one LM's result under the name it is reported by (a cache
// policy, a model, an adapter).
type Named[T any] struct {
	Name   string
	Result T
}

// accuracyGrid is a passkey grid for plotter.HeatMap: column = length index,
// row = depth index.
type accuracyGrid struct {
	lengths []int
	depths  []float64
	acc     map[[2]int]float64
}

func (g accuracyGrid) Dims() (c, r int)   { return len(g.lengths), len(g.depths) }
func (g accuracyGrid) Z(c, r int) float64 { return g.acc[[2]int{c, r}] }
func (g accuracyGrid) X(c int) float64    { return float64(c) }
func (g accuracyGrid) Y(r int) float64    { return float64(r) }
func newGrid(lengths []int, depths []float64) accuracyGrid {
	return accuracyGrid{lengths: lengths, depths: depths, acc: map[[2]int]float64{}}
}

// PlotPasskey writes the needle-in-a-haystack heatmaps, one panel per LM
// side by side: prompt length across, key depth down, colour = accuracy.
func PlotPasskey(w io.Writer, title string, lengths []int, depths []float64, results []Named[PasskeyResult]) error {
	if len(results) == 0 {
		return fmt.Errorf("passkey plot: no results")
	}
	pal := moreland.SmoothBlueRed()
	pal.SetMin(0)
	pal.SetMax(1)
	colors := pal.Palette(64)
	// Blue-red reversed: red (0) for misses, blue (1) for hits.
	rev := make([]color.Color, len(colors.Colors()))
	for i, c := range colors.Colors() {
		rev[len(rev)-1-i] = c
	}
	var plots []*plot.Plot
	for _, nr := range results {
		g := newGrid(lengths, depths)
		li := map[int]int{}
		for i, l := range lengths {
			li[l] = i
		}
		di := map[float64]int{}
		for i, d := range depths {
			di[d] = i
		}
		var labels plotter.XYLabels
		for _, c := range nr.Result.Cells {
			x, y := li[c.Length], di[c.Depth]
			g.acc[[2]int{x, y}] = c.Accuracy
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(x), Y: float64(y)})
			labels.Labels = append(labels.Labels, fmt.Sprintf("%.0f%%", 100*c.Accuracy))
		}
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: %.0f%%", nr.Name, 100*nr.Result.Accuracy)
		p.X.Label.Text = "prompt tokens"
		p.Y.Label.Text = "key depth"
		hm := plotter.NewHeatMap(g, staticPalette(rev))
		hm.Min, hm.Max = 0, 1
		p.Add(hm)
		if lb, err := plotter.NewLabels(labels); err == nil {
			for i := range lb.TextStyle {
				lb.TextStyle[i].XAlign, lb.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
			}
			p.Add(lb)
		}
		var xt, yt []plot.Tick
		for i, l := range lengths {
			xt = append(xt, plot.Tick{Value: float64(i), Label: strconv.Itoa(l)})
		}
		for i, d := range depths {
			yt = append(yt, plot.Tick{Value: float64(i), Label: strconv.FormatFloat(d, 'g', 3, 64)})
		}
		p.X.Tick.Marker = plot.ConstantTicks(xt)
		p.Y.Tick.Marker = plot.ConstantTicks(yt)
		p.X.Min, p.X.Max = -0.5, float64(len(lengths))-0.5
		p.Y.Min, p.Y.Max = -0.5, float64(len(depths))-0.5
		plots = append(plots, p)
	}
	return saveRow(w, title, plots, 4*vg.Inch, 3.5*vg.Inch)
}

type staticPalette []color.Color

func (p staticPalette) Colors() []color.Color { return p }

// saveRow draws plots side by side under a title into one PNG.
func saveRow(out io.Writer, title string, plots []*plot.Plot, w, h vg.Length) error {
	width, height := w*vg.Length(len(plots)), h+0.4*vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	head := dc
	head.Min.Y = dc.Max.Y - 0.4*vg.Inch
	ts := draw.TextStyle{Color: color.Black, Font: plot.DefaultFont, Handler: plot.DefaultTextHandler, XAlign: draw.XCenter, YAlign: draw.YCenter}
	ts.Font.Size = vg.Points(13)
	head.FillText(ts, vg.Point{X: width / 2, Y: head.Min.Y + 0.2*vg.Inch}, title)
	body := dc
	body.Max.Y = dc.Max.Y - 0.4*vg.Inch
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter, PadY: vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, body)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	_, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(out)
	return err
}

// PlotRepeat draws, per LM, the memory gain (control NLL minus repeat NLL: what having
// seen the segment is worth) against the gap; a vertical line marks N. The gain, not the
// NLLs themselves, is plotted so that policies whose NLLs differ by a lot (an ablation)
// stay on one readable scale.
func PlotRepeat(w io.Writer, title string, n int, results []Named[[]RepeatPoint]) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "gap (tokens between the two occurrences)"
	p.Y.Label.Text = "gain: control NLL - repeat NLL"
	for i, nr := range results {
		var pts plotter.XYs
		for _, pt := range nr.Result {
			pts = append(pts, plotter.XY{X: float64(pt.Gap), Y: pt.Gain})
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color, s.Color, s.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
		p.Add(l, s)
		p.Legend.Add(nr.Name, l, s)
	}
	zero := plotter.NewFunction(func(float64) float64 { return 0 })
	zero.Color = color.Gray{Y: 160}
	p.Add(zero)
	if n > 0 {
		addVLine(p, float64(n), fmt.Sprintf("N = %d", n))
	}
	p.X.Min = 0
	p.Legend.Top, p.Legend.Left = true, false
	return savePNG(w, p)
}

func savePNG(w io.Writer, p *plot.Plot) error {
	wt, err := p.WriterTo(8*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}

func addVLine(p *plot.Plot, x float64, name string) {
	p.X.Max = max(p.X.Max, x)
	vl, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
	if err != nil {
		return
	}
	vl.Color = color.Gray{Y: 120}
	vl.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(vl)
	p.Legend.Add(name, vl)
}

// PlotCurve draws mean NLL per position bucket, one line per LM. A policy far above the
// rest (an ablation that breaks the model) would squash the others into one line, so the
// axis stops at twice the median bucket NLL and such a line is drawn clipped, named so.
func PlotCurve(w io.Writer, title string, n int, results []Named[[]Bucket]) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "position in the window (bucket centre)"
	p.Y.Label.Text = "mean NLL"
	var all []float64
	for _, nr := range results {
		for _, b := range nr.Result {
			all = append(all, b.MeanNLL)
		}
	}
	sort.Float64s(all)
	top := math.Inf(1)
	if len(all) > 0 {
		top = 2 * all[len(all)/2]
	}
	for i, nr := range results {
		var pts plotter.XYs
		clipped := false
		for _, b := range nr.Result {
			y := b.MeanNLL
			if y > top {
				y, clipped = top, true
			}
			pts = append(pts, plotter.XY{X: float64(b.Start+b.End) / 2, Y: y})
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color, s.Color, s.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
		p.Add(l, s)
		name := nr.Name
		if clipped {
			name += fmt.Sprintf(" (clipped at %.2f)", top)
		}
		p.Legend.Add(name, l, s)
	}
	if n > 0 {
		addVLine(p, float64(n), fmt.Sprintf("N = %d", n))
	}
	p.X.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(10), -vg.Points(4)
	return savePNG(w, p)
}
