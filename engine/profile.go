package engine

import (
	"fmt"
	"sort"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
)

// Profile accumulates GPU time per kernel from timestamp queries written
// around each dispatch. Profiling splits every dispatch into its own pass,
// so measure with it and benchmark without it.
type Profile struct {
	qs         *wgpu.QuerySet
	resolveBuf *wgpu.Buffer
	names      []string
	n          uint32
	Kernels    map[string]*KernelTime
	// Phase, when set, prefixes the names of the kernels recorded after
	// it ("backward/" + kernel), so one profile splits time by phase.
	Phase string
}

// KernelTime is the GPU time spent in one kernel.
type KernelTime struct {
	Name  string
	Calls int
	Total time.Duration
}

// 4096 dispatches (wgpu caps a query set at 8192): a prefill chunk of the xtiled products is
// about 3,600.
const profileQueries = 8192

// NewProfile prepares timestamp queries; nil if the device has none.
func (d *Device) NewProfile() (*Profile, error) {
	if !d.Timestamps {
		return nil, fmt.Errorf("adapter %q has no timestamp queries: profiling unavailable", d.Info.Name)
	}
	qs, err := d.dev.CreateQuerySet(&wgpu.QuerySetDescriptor{Label: "profile", Type: wgpu.QueryTypeTimestamp, Count: profileQueries})
	if err != nil {
		return nil, fmt.Errorf("create timestamp queries: %w", err)
	}
	buf, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: "profile", Size: profileQueries * 8, Usage: wgpu.BufferUsageQueryResolve | wgpu.BufferUsageCopySrc})
	if err != nil {
		qs.Release()
		return nil, fmt.Errorf("create timestamp buffer: %w", err)
	}
	return &Profile{qs: qs, resolveBuf: buf, Kernels: map[string]*KernelTime{}}, nil
}

func (p *Profile) mark(r *Recorder, name string, begin bool) error {
	if p.n >= profileQueries {
		return nil // full: later dispatches go unprofiled until collected
	}
	if begin {
		p.names = append(p.names, p.Phase+name)
	}
	if err := r.encoder().WriteTimestamp(p.qs, p.n); err != nil {
		return fmt.Errorf("write timestamp: %w", err)
	}
	p.n++
	return nil
}

func (p *Profile) resolve(r *Recorder) {
	if p.n == 0 || r.enc == nil {
		return
	}
	if err := r.enc.ResolveQuerySet(p.qs, 0, p.n, p.resolveBuf, 0); err != nil {
		r.fail(fmt.Errorf("resolve timestamps: %w", err))
	}
}

func (p *Profile) collect(d *Device) error {
	if p.n == 0 {
		return nil
	}
	rec := d.NewRecorder()
	rb := rec.ReadBack(&Buffer{dev: d, buf: p.resolveBuf, size: uint64(p.n) * 8, alloc: profileQueries * 8, Label: "profile"}, 0, uint64(p.n)*8)
	if err := rec.SubmitAndWait(); err != nil {
		return err
	}
	ticks := wgpu.FromBytes[uint64](rb.Bytes())
	period := 1.0 // WebGPU timestamps are nanoseconds
	for i, name := range p.names {
		if 2*i+1 >= len(ticks) {
			break
		}
		kt := p.Kernels[name]
		if kt == nil {
			kt = &KernelTime{Name: name}
			p.Kernels[name] = kt
		}
		kt.Calls++
		if ticks[2*i+1] > ticks[2*i] {
			kt.Total += time.Duration(float64(ticks[2*i+1]-ticks[2*i]) * period)
		}
	}
	p.names, p.n = p.names[:0], 0
	return nil
}

// Sorted returns kernels by total time, largest first.
func (p *Profile) Sorted() []KernelTime {
	out := make([]KernelTime, 0, len(p.Kernels))
	for _, k := range p.Kernels {
		out = append(out, *k)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Total > out[b].Total })
	return out
}

// Release frees the query set.
func (p *Profile) Release() {
	p.qs.Release()
	p.resolveBuf.Release()
}
