package engine

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
)

// Kernel is a compiled compute pipeline with its bind-group layout, created
// once per (name, constants) and cached by the device.
type Kernel struct {
	Name       string
	Compile    time.Duration
	dev        *Device
	pipeline   *wgpu.ComputePipeline
	layout     *wgpu.BindGroupLayout
	bindings   []bindingDecl
	bindGroups map[bindKey]*wgpu.BindGroup
	// retired is the previous generation of bindGroups, released when the current one
	// fills up in turn: a bind group may still be in a pass being recorded when its
	// generation is evicted, and releasing it then makes wgpu abort when the pass ends.
	retired []*wgpu.BindGroup
}

type bindingDecl struct {
	index    uint32
	uniform  bool
	readOnly bool
}

type bindKey struct {
	bufs    [8]uint64 // buffer ids: never reused, unlike pointers
	offsets [8]uint64
	sizes   [8]uint64
}

// Constants specialise a shader: each becomes a module-scope `const NAME = VALUE;`
// declaration, so one WGSL file serves several workgroup sizes and dtypes.
type Constants map[string]string

func (c Constants) key() string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%s;", n, c[n])
	}
	return b.String()
}

var bindingRE = regexp.MustCompile(`@group\(0\)\s*@binding\((\d+)\)\s*var<(uniform|storage\s*,\s*read_write|storage\s*,\s*read|storage)>`)

// parseBindings derives the bind-group layout from the shader source, so the
// WGSL file is the one place that states it. Binding 0 must be the uniform
// parameter block; the rest are storage buffers, or read-only uniform buffers
// (var<uniform>): on llvmpipe a uniform load at a uniform index is one scalar
// load and a broadcast, where a storage load is a loop over the SIMD lanes.
func parseBindings(src string) ([]bindingDecl, error) {
	var out []bindingDecl
	for _, m := range bindingRE.FindAllStringSubmatch(src, -1) {
		i, _ := strconv.Atoi(m[1])
		kind := strings.ReplaceAll(m[2], " ", "")
		out = append(out, bindingDecl{index: uint32(i), uniform: kind == "uniform", readOnly: kind == "storage,read" || kind == "storage"})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].index < out[b].index })
	for i, b := range out {
		if int(b.index) != i {
			return nil, fmt.Errorf("bindings must be numbered 0..n-1 without gaps, found @binding(%d) at position %d", b.index, i)
		}
		if i == 0 && !b.uniform {
			return nil, fmt.Errorf("@binding(0) must be the var<uniform> parameter block")
		}
	}
	if len(out) == 0 || len(out) > 8 {
		return nil, fmt.Errorf("a kernel needs 1..8 bindings, found %d", len(out))
	}
	return out, nil
}

// specialise inserts the constants after any `enable` directives.
func specialise(src string, c Constants) string {
	var head, body []string
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "enable ") {
			head = append(head, line)
		} else {
			body = append(body, line)
		}
	}
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		head = append(head, fmt.Sprintf("const %s = %s;", n, c[n]))
	}
	return strings.Join(head, "\n") + "\n" + strings.Join(body, "\n")
}

// ErrNoShaderF16 is wrapped by errors about f16 kernels on a device without shader-f16.
var ErrNoShaderF16 = errors.New("needs shader-f16")

// CachedKernel returns the pipeline Kernel compiled for name, entry and c, if
// any: callers that build a kernel's source (preprocessing, generated code)
// skip that work on every use after the first.
func (d *Device) CachedKernel(name, entry string, c Constants) (*Kernel, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k, ok := d.kernels[kernelKey(name, entry, c)]
	return k, ok
}

func kernelKey(name, entry string, c Constants) string { return name + "|" + entry + "|" + c.key() }

// Kernel returns the pipeline for a shader and its constants, compiling it
// on first use. name identifies the source (e.g. "matmul.wgsl:matvec_q8").
func (d *Device) Kernel(name, src, entry string, c Constants) (*Kernel, error) {
	key := kernelKey(name, entry, c)
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := d.kernels[key]; ok {
		return k, nil
	}
	if strings.Contains(src, "enable f16;") && !d.ShaderF16 {
		return nil, fmt.Errorf("kernel %s: %w, which adapter %q does not offer; f32 data avoids it", name, ErrNoShaderF16, d.Info.Name)
	}
	decls, err := parseBindings(src)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", name, err)
	}
	start := time.Now()
	module, err := d.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{
		Label:          name,
		WGSLDescriptor: &wgpu.ShaderModuleWGSLDescriptor{Code: specialise(src, c)},
	})
	if err != nil {
		return nil, fmt.Errorf("compile shader %s: %w", name, err)
	}
	defer module.Release()
	entries := make([]wgpu.BindGroupLayoutEntry, len(decls))
	for i, b := range decls {
		e := wgpu.BindGroupLayoutEntry{Binding: b.index, Visibility: wgpu.ShaderStageCompute}
		switch {
		case b.uniform && b.index == 0:
			e.Buffer = wgpu.BufferBindingLayout{Type: wgpu.BufferBindingTypeUniform, HasDynamicOffset: true, MinBindingSize: paramSlot}
		case b.uniform:
			e.Buffer = wgpu.BufferBindingLayout{Type: wgpu.BufferBindingTypeUniform}
		case b.readOnly:
			e.Buffer = wgpu.BufferBindingLayout{Type: wgpu.BufferBindingTypeReadOnlyStorage}
		default:
			e.Buffer = wgpu.BufferBindingLayout{Type: wgpu.BufferBindingTypeStorage}
		}
		entries[i] = e
	}
	layout, err := d.dev.CreateBindGroupLayout(&wgpu.BindGroupLayoutDescriptor{Label: name, Entries: entries})
	if err != nil {
		return nil, fmt.Errorf("bind group layout for %s: %w", name, err)
	}
	pl, err := d.dev.CreatePipelineLayout(&wgpu.PipelineLayoutDescriptor{Label: name, BindGroupLayouts: []*wgpu.BindGroupLayout{layout}})
	if err != nil {
		layout.Release()
		return nil, fmt.Errorf("pipeline layout for %s: %w", name, err)
	}
	defer pl.Release()
	pipeline, err := d.dev.CreateComputePipeline(&wgpu.ComputePipelineDescriptor{
		Label:   name,
		Layout:  pl,
		Compute: wgpu.ProgrammableStageDescriptor{Module: module, EntryPoint: entry},
	})
	if err != nil {
		layout.Release()
		return nil, fmt.Errorf("create pipeline %s (entry %s): %w", name, entry, err)
	}
	k := &Kernel{Name: name + ":" + entry, Compile: time.Since(start), dev: d, pipeline: pipeline, layout: layout, bindings: decls, bindGroups: map[bindKey]*wgpu.BindGroup{}}
	d.compileNS += int64(k.Compile)
	d.kernels[key] = k
	return k, nil
}

// CompileTime is the total time spent creating pipelines so far.
func (d *Device) CompileTime() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Duration(d.compileNS)
}

// Storage returns the number of storage bindings the kernel takes.
func (k *Kernel) Storage() int { return len(k.bindings) - 1 }

func (k *Kernel) bindGroup(params *Buffer, bufs []Binding) (*wgpu.BindGroup, error) {
	if len(bufs) != k.Storage() {
		return nil, fmt.Errorf("kernel %s takes %d storage buffers, got %d", k.Name, k.Storage(), len(bufs))
	}
	var key bindKey
	key.bufs[0] = params.id
	for i, b := range bufs {
		if b.Buf == nil || b.Buf.buf == nil {
			return nil, fmt.Errorf("kernel %s: binding %d is nil or released", k.Name, i+1)
		}
		if b.Offset+b.size() > b.Buf.alloc {
			return nil, fmt.Errorf("kernel %s: binding %d (%q) range %d+%d exceeds its %d bytes", k.Name, i+1, b.Buf.Label, b.Offset, b.size(), b.Buf.alloc)
		}
		if k.bindings[i+1].uniform {
			if b.size() > k.dev.MaxUniformBinding() {
				return nil, fmt.Errorf("kernel %s: uniform binding %d (%q) is %d bytes, over the device's maxUniformBufferBindingSize %d", k.Name, i+1, b.Buf.Label, b.size(), k.dev.MaxUniformBinding())
			}
			if b.Offset%uint64(k.dev.Limits.MinUniformBufferOffsetAlignment) != 0 {
				return nil, fmt.Errorf("kernel %s: uniform binding %d (%q) at offset %d is not aligned to %d bytes", k.Name, i+1, b.Buf.Label, b.Offset, k.dev.Limits.MinUniformBufferOffsetAlignment)
			}
		} else if b.size() > k.dev.MaxBinding() {
			return nil, fmt.Errorf("kernel %s: binding %d (%q) is %d bytes, over the device's maxStorageBufferBindingSize %d; bind it in chunks", k.Name, i+1, b.Buf.Label, b.size(), k.dev.MaxBinding())
		}
		key.bufs[i+1], key.offsets[i+1], key.sizes[i+1] = b.Buf.id, b.Offset, b.size()
	}
	if bg, ok := k.bindGroups[key]; ok {
		return bg, nil
	}
	entries := make([]wgpu.BindGroupEntry, 0, len(bufs)+1)
	entries = append(entries, wgpu.BindGroupEntry{Binding: 0, Buffer: params.buf, Offset: 0, Size: paramSlot})
	for i, b := range bufs {
		entries = append(entries, wgpu.BindGroupEntry{Binding: uint32(i + 1), Buffer: b.Buf.buf, Offset: b.Offset, Size: b.size()})
	}
	bg, err := k.dev.dev.CreateBindGroup(&wgpu.BindGroupDescriptor{Label: k.Name, Layout: k.layout, Entries: entries})
	if err != nil {
		return nil, fmt.Errorf("bind group for %s: %w", k.Name, err)
	}
	// Bind groups hold their buffers alive; cap the cache so kernels bound to
	// short-lived buffers (tests, benchmarks) don't grow without bound.
	if len(k.bindGroups) >= 4096 {
		for _, old := range k.retired {
			old.Release()
		}
		k.retired = k.retired[:0]
		for kk, old := range k.bindGroups {
			k.retired = append(k.retired, old)
			delete(k.bindGroups, kk)
		}
	}
	k.bindGroups[key] = bg
	return bg, nil
}

func (k *Kernel) release() {
	for _, bg := range k.bindGroups {
		bg.Release()
	}
	for _, bg := range k.retired {
		bg.Release()
	}
	k.pipeline.Release()
	k.layout.Release()
}
