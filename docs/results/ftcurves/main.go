// Command ftcurves overlays the loss curves of several `freqkv finetune --json`
// runs in one figure: each run's training loss (a moving average, since one
// step is one sequence) as a line and its held-out loss as points in the same
// colour. It makes the fine-tuning figures in docs/results:
//
//	go run ./docs/results/ftcurves -o docs/results/ft-s260-text.png -title "stories260K, text" \
//	    freqkv=freqkv.jsonl window=window.jsonl full=full.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// event is the part of a finetune JSON line this reads.
type event struct {
	Event    string  `json:"event"`
	Step     int     `json:"step"`
	Loss     float64 `json:"loss"`
	EvalLoss float64 `json:"eval_loss"`
}

type curve struct {
	label       string
	train, eval plotter.XYs
}

func main() {
	out := flag.String("o", "", "PNG to write")
	title := flag.String("title", "", "figure title")
	smooth := flag.Int("smooth", 10, "steps in the training loss's trailing moving average")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: ftcurves -o OUT.png [-title T] [-smooth K] LABEL=RUN.jsonl ...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() == 0 || *smooth < 1 {
		flag.Usage()
		os.Exit(2)
	}
	var curves []curve
	for _, a := range flag.Args() {
		label, path, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "ftcurves: %q is not LABEL=RUN.jsonl\n", a)
			os.Exit(2)
		}
		c, err := read(label, path, *smooth)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ftcurves:", err)
			os.Exit(1)
		}
		curves = append(curves, c)
	}
	if err := draw1(*out, *title, *smooth, curves); err != nil {
		fmt.Fprintln(os.Stderr, "ftcurves:", err)
		os.Exit(1)
	}
}

// read parses one run's JSON lines; a resumed run may repeat steps, the
// last reading of a step wins.
func read(label, path string, smooth int) (curve, error) {
	f, err := os.Open(path)
	if err != nil {
		return curve{}, err
	}
	defer f.Close()
	loss, eval := map[int]float64{}, map[int]float64{}
	last := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return curve{}, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		switch e.Event {
		case "step":
			loss[e.Step] = e.Loss
			last = max(last, e.Step)
		case "eval":
			eval[e.Step] = e.EvalLoss
		}
	}
	if err := sc.Err(); err != nil {
		return curve{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(loss) == 0 {
		return curve{}, fmt.Errorf("%s: no step events", path)
	}
	c := curve{label: label}
	var window []float64
	for s := 1; s <= last; s++ {
		l, ok := loss[s]
		if !ok {
			continue
		}
		window = append(window, l)
		if len(window) > smooth {
			window = window[1:]
		}
		sum := 0.0
		for _, v := range window {
			sum += v
		}
		c.train = append(c.train, plotter.XY{X: float64(s), Y: sum / float64(len(window))})
	}
	for s := 0; s <= last; s++ {
		if v, ok := eval[s]; ok {
			c.eval = append(c.eval, plotter.XY{X: float64(s), Y: v})
		}
	}
	return c, nil
}

func draw1(path, title string, smooth int, curves []curve) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step (one 2048-token sequence each)"
	p.Y.Label.Text = "mean NLL (nats/token)"
	p.Legend.Top = true
	for i, c := range curves {
		col := plotutil.Color(i)
		l, err := plotter.NewLine(c.train)
		if err != nil {
			return err
		}
		l.Color = col
		l.Width = vg.Points(1)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s, training (mean of %d steps)", c.label, smooth), l)
		if len(c.eval) == 0 {
			continue
		}
		el, pts, err := plotter.NewLinePoints(c.eval)
		if err != nil {
			return err
		}
		el.Color, el.Dashes = col, []vg.Length{vg.Points(4), vg.Points(3)}
		pts.Color, pts.Shape, pts.Radius = col, draw.CircleGlyph{}, vg.Points(3)
		p.Add(el, pts)
		p.Legend.Add(c.label+", held-out", el, pts)
	}
	g := plotter.NewGrid()
	g.Horizontal.Color, g.Vertical.Color = color.Gray{Y: 220}, color.Gray{Y: 220}
	p.Add(g)
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}
