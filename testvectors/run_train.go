package testvectors

import (
	"github.com/freqkv/freqkv/engine"
)

// args collects a training vector's parameters and tensors, keeping the
// first error, so the training runners read as the launch they make.
type args struct {
	r   *Run
	v   *Vector
	err error
}

func (a *args) int(name string) int {
	if a.err != nil {
		return 0
	}
	x, err := a.v.Int(name)
	a.err = err
	return x
}

func (a *args) flag(name string) bool { return a.int(name) != 0 }

// opt reads an integer parameter that older vectors may omit (0 then).
func (a *args) opt(name string) int {
	if _, ok := a.v.Params[name]; !ok {
		return 0
	}
	return a.int(name)
}

func (a *args) float(name string) float32 {
	if a.err != nil {
		return 0
	}
	x, err := a.v.Float(name)
	a.err = err
	return float32(x)
}

func (a *args) in(name string) *engine.Tensor {
	if a.err != nil {
		return nil
	}
	t, err := a.r.Input(a.v, name)
	a.err = err
	return t
}

// out is a poisoned f32 output.
func (a *args) out(name string) *engine.Tensor {
	if a.err != nil {
		return nil
	}
	t, err := a.r.Output(a.v, name, engine.F32)
	a.err = err
	return t
}

// inout is an output whose initial contents come from input name+"0" when
// the vector has one (an accumulating kernel), else a poisoned output.
func (a *args) inout(name string) *engine.Tensor {
	if _, ok := a.v.Inputs[name+"0"]; ok {
		return a.in(name + "0")
	}
	return a.out(name)
}

// submit launches fn and reads the named outputs.
func (a *args) submit(fn func(rec *engine.Recorder) error, outs map[string]*engine.Tensor) (map[string][]float64, error) {
	if a.err != nil {
		return nil, a.err
	}
	return a.r.Submit(fn, outs)
}

func init() {
	register("gemm", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		m, n, k := a.int("m"), a.int("n"), a.int("k")
		opt := gemmOpts(a)
		x, w, c := a.in("a"), a.in("b"), a.inout("c")
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.GEMM(rec, x, w, c, m, n, k, opt) }, map[string]*engine.Tensor{"c": c})
	})
	register("axpy", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		n, xo, yo := a.int("n"), a.int("xoff"), a.int("yoff")
		alpha, beta := a.float("alpha"), a.float("beta")
		x, y := a.in("x"), a.inout("y")
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.Axpy(rec, x, xo, y, yo, n, alpha, beta) }, map[string]*engine.Tensor{"y": y})
	})
	register("fill", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		n, yo, val := a.int("n"), a.int("yoff"), a.float("value")
		y := a.inout("y")
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.Fill(rec, y, yo, n, val) }, map[string]*engine.Tensor{"y": y})
	})
	register("swiglu_bwd", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		n := a.int("n")
		g, up, dh, dg, du := a.in("gate"), a.in("up"), a.in("dh"), a.out("dgate"), a.out("dup")
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.SwiGLUBackward(rec, g, up, dh, dg, du, n) },
			map[string]*engine.Tensor{"dgate": dg, "dup": du})
	})
}

// scratch is a poisoned f32 [1, n] tensor the kernel may use freely.
func (a *args) scratch(name string, n int) *engine.Tensor {
	if a.err != nil {
		return nil
	}
	t, err := a.r.Dev.NewTensor(name, engine.F32, 1, n)
	if err != nil {
		a.err = err
		return nil
	}
	a.r.tmp = append(a.r.tmp, t)
	a.err = Poison(t)
	return t
}
