package engine

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
)

// paramSlot is the size of one dispatch's uniform parameter block.
const paramSlot = 256

// arenaSlots is how many dispatches one submit can carry before the recorder
// flushes; a forward step of a 32-layer model needs a few hundred.
const arenaSlots = 4096

// Recorder appends dispatches to one command encoder and submits them at
// once. Parameters go to one shared uniform arena at per-dispatch dynamic
// offsets, so a kernel's bind group is created once per set of buffers and
// reused for every step. A device runs one recorder at a time.
type Recorder struct {
	dev    *Device
	enc    *wgpu.CommandEncoder
	pass   *wgpu.ComputePassEncoder
	params []byte
	slots  int
	reads  []*Readback
	err    error

	// Profile, when set and the device has timestamp queries, collects the
	// GPU time of every dispatch.
	Profile *Profile

	Dispatches int // dispatches recorded since creation
	Submits    int // command buffers submitted since creation
}

// Readback receives bytes copied from a buffer when its recorder completes.
type Readback struct {
	staging *wgpu.Buffer
	size    uint64
	data    []byte
}

// Bytes returns the data; valid after SubmitAndWait.
func (r *Readback) Bytes() []byte { return r.data }

// Float32s decodes the data as little-endian float32.
func (r *Readback) Float32s() []float32 { return wgpu.FromBytes[float32](r.data) }

// Uint32s decodes the data as little-endian uint32.
func (r *Readback) Uint32s() []uint32 { return wgpu.FromBytes[uint32](r.data) }

// NewRecorder starts an empty recording.
func (d *Device) NewRecorder() *Recorder { return &Recorder{dev: d} }

func (r *Recorder) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return r.err
}

// Check makes err, when not nil, the recording's error, as a failed dispatch would: later
// recording is skipped and Err and SubmitAndWait report the first error. A caller can
// then record a sequence of launches as plain statements and check once, at the end.
func (r *Recorder) Check(err error) {
	if err != nil {
		r.fail(err)
	}
}

// Err is the first error of the recording, nil if there is none.
func (r *Recorder) Err() error { return r.err }

func (r *Recorder) encoder() *wgpu.CommandEncoder {
	if r.enc == nil && r.err == nil {
		enc, err := r.dev.dev.CreateCommandEncoder(&wgpu.CommandEncoderDescriptor{Label: "freqkv step"})
		if err != nil {
			r.fail(fmt.Errorf("create command encoder: %w", err))
			return nil
		}
		r.enc = enc
	}
	return r.enc
}

func (r *Recorder) endPass() {
	if r.pass != nil {
		if err := r.pass.End(); err != nil {
			r.fail(fmt.Errorf("end compute pass: %w", err))
		}
		r.pass.Release()
		r.pass = nil
	}
}

func (d *Device) paramArena() (*Buffer, error) {
	if d.params != nil {
		return d.params, nil
	}
	stride := uint64(paramStride(d))
	b, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: "params", Size: stride * arenaSlots, Usage: wgpu.BufferUsageUniform | wgpu.BufferUsageCopyDst})
	if err != nil {
		return nil, fmt.Errorf("allocate parameter arena: %w", err)
	}
	d.params = &Buffer{dev: d, buf: b, size: stride * arenaSlots, alloc: stride * arenaSlots, id: d.nextID.Add(1), Label: "params"}
	return d.params, nil
}

func paramStride(d *Device) int {
	s := int(d.Limits.MinUniformBufferOffsetAlignment)
	if s < paramSlot {
		s = paramSlot
	}
	return s
}

// Dispatch records one kernel launch of groups workgroups with the given
// parameter words (at most 64) and storage bindings, in the order of the
// shader's @binding(1..n).
func (r *Recorder) Dispatch(k *Kernel, params []uint32, groups [3]uint32, bufs ...Binding) error {
	if r.err != nil {
		return r.err
	}
	if len(params)*4 > paramSlot {
		return r.fail(fmt.Errorf("kernel %s: %d parameter words exceed the %d-byte slot", k.Name, len(params), paramSlot))
	}
	maxG := r.dev.Limits.MaxComputeWorkgroupsPerDimension
	for _, g := range groups {
		if g > maxG {
			return r.fail(fmt.Errorf("kernel %s: %v workgroups exceed the device's %d per dimension", k.Name, groups, maxG))
		}
	}
	if groups[0] == 0 || groups[1] == 0 || groups[2] == 0 {
		return nil // nothing to do; an empty dispatch is legal but wasteful
	}
	arena, err := r.dev.paramArena()
	if err != nil {
		return r.fail(err)
	}
	if r.slots == arenaSlots {
		if err := r.flush(); err != nil {
			return err
		}
	}
	bg, err := k.bindGroup(arena, bufs)
	if err != nil {
		return r.fail(err)
	}
	stride := paramStride(r.dev)
	off := r.slots * stride
	if need := off + stride; len(r.params) < need {
		r.params = append(r.params, make([]byte, need-len(r.params))...)
	}
	for i, p := range params {
		binary.LittleEndian.PutUint32(r.params[off+4*i:], p)
	}
	r.slots++
	enc := r.encoder()
	if enc == nil {
		return r.err
	}
	profiling := r.Profile != nil && r.dev.Timestamps
	if profiling {
		r.endPass()
		if err := r.Profile.mark(r, k.Name, true); err != nil {
			return r.fail(err)
		}
	}
	if r.pass == nil {
		r.pass = enc.BeginComputePass(nil)
	}
	r.pass.SetPipeline(k.pipeline)
	r.pass.SetBindGroup(0, bg, []uint32{uint32(off)})
	r.pass.DispatchWorkgroups(groups[0], groups[1], groups[2])
	r.Dispatches++
	if profiling {
		r.endPass()
		if err := r.Profile.mark(r, k.Name, false); err != nil {
			return r.fail(err)
		}
	}
	return nil
}

// Copy records a buffer-to-buffer copy (offsets and size multiples of 4).
func (r *Recorder) Copy(src *Buffer, srcOff uint64, dst *Buffer, dstOff uint64, size uint64) error {
	if r.err != nil {
		return r.err
	}
	if size == 0 {
		return nil
	}
	if srcOff+size > src.alloc || dstOff+size > dst.alloc {
		return r.fail(fmt.Errorf("copy %d bytes from %q+%d to %q+%d: out of range", size, src.Label, srcOff, dst.Label, dstOff))
	}
	r.endPass()
	enc := r.encoder()
	if enc == nil {
		return r.err
	}
	if err := enc.CopyBufferToBuffer(src.buf, srcOff, dst.buf, dstOff, size); err != nil {
		return r.fail(fmt.Errorf("copy %q -> %q: %w", src.Label, dst.Label, err))
	}
	return nil
}

// ReadBack records a copy of size bytes at offset into host memory; the
// returned Readback holds them after SubmitAndWait.
func (r *Recorder) ReadBack(b *Buffer, offset, size uint64) *Readback {
	rb := &Readback{size: size}
	if r.err != nil {
		return rb
	}
	aligned := (size + 3) &^ 3
	if offset%4 != 0 || offset+aligned > b.alloc {
		r.fail(fmt.Errorf("read %q: %d bytes at offset %d out of range (%d bytes)", b.Label, size, offset, b.size))
		return rb
	}
	staging, err := r.dev.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: "readback", Size: max(aligned, 4), Usage: wgpu.BufferUsageMapRead | wgpu.BufferUsageCopyDst})
	if err != nil {
		r.fail(fmt.Errorf("allocate readback of %d bytes: %w", size, err))
		return rb
	}
	rb.staging = staging
	r.reads = append(r.reads, rb)
	if aligned > 0 {
		r.endPass()
		if enc := r.encoder(); enc != nil {
			if err := enc.CopyBufferToBuffer(b.buf, offset, staging, 0, aligned); err != nil {
				r.fail(fmt.Errorf("read %q: %w", b.Label, err))
			}
		}
	}
	return rb
}

// flush submits what is recorded so far and starts a new encoder.
func (r *Recorder) flush() error {
	if r.err != nil {
		return r.err
	}
	r.endPass()
	if r.Profile != nil && r.dev.Timestamps {
		r.Profile.resolve(r)
	}
	if r.enc == nil {
		return r.err
	}
	cmd, err := r.enc.Finish(nil)
	r.enc.Release()
	r.enc = nil
	if err != nil {
		return r.fail(fmt.Errorf("finish command buffer: %w", err))
	}
	defer cmd.Release()
	if r.slots > 0 {
		if err := r.dev.queue.WriteBuffer(r.dev.params.buf, 0, r.params[:r.slots*paramStride(r.dev)]); err != nil {
			return r.fail(fmt.Errorf("upload parameters: %w", err))
		}
	}
	r.dev.queue.Submit(cmd)
	r.Submits++
	r.slots = 0
	return r.err
}

// Discard drops everything recorded without running it. Recording alone
// compiles every pipeline the dispatches need, so a discarded recording is
// how a caller warms the pipeline cache before the first real step.
func (r *Recorder) Discard() {
	r.endPass()
	if r.enc != nil {
		r.enc.Release()
		r.enc = nil
	}
	r.releaseReads()
	r.slots = 0
}

// SubmitAndWait submits, waits for the GPU, and fills every Readback.
func (r *Recorder) SubmitAndWait() error {
	if err := r.flush(); err != nil {
		r.releaseReads()
		return err
	}
	if err := r.dev.waitIdle(); err != nil {
		r.releaseReads()
		return r.fail(err)
	}
	for _, rb := range r.reads {
		if rb.size == 0 {
			rb.data = []byte{}
			continue
		}
		if err := r.dev.mapRead(rb.staging, (rb.size+3)&^3); err != nil {
			r.releaseReads()
			return r.fail(err)
		}
		rb.data = make([]byte, rb.size)
		copy(rb.data, rb.staging.GetMappedRange(0, uint((rb.size+3)&^3)))
		rb.staging.Unmap()
	}
	r.releaseReads()
	if r.Profile != nil && r.dev.Timestamps {
		if err := r.Profile.collect(r.dev); err != nil {
			return r.fail(err)
		}
	}
	return nil
}

func (r *Recorder) releaseReads() {
	for _, rb := range r.reads {
		if rb.staging != nil {
			rb.staging.Destroy()
			rb.staging.Release()
			rb.staging = nil
		}
	}
	r.reads = nil
}

// waitIdle blocks until everything submitted so far has completed. A single
// Poll(wait) is not enough: wgpu gives up waiting after about 5 s, and on
// lavapipe a submit issued while a long one still runs then crashes the
// driver. So wait for the queue's own completion callback.
func (d *Device) waitIdle() error {
	var done atomic.Bool
	d.queue.OnSubmittedWorkDone(func(wgpu.QueueWorkDoneStatus) { done.Store(true) })
	return d.pollUntil(&done, "GPU work")
}

// pollUntil polls without blocking until done is set. A blocking Poll hits
// wgpu's 5 s fence timeout on long submits, after which lavapipe crashes
// in its queue thread; short sleeps cost at most a millisecond of latency.
func (d *Device) pollUntil(done *atomic.Bool, what string) error {
	deadline := time.Now().Add(30 * time.Minute)
	nap := 20 * time.Microsecond
	for {
		d.dev.Poll(false, nil)
		if done.Load() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not complete in 30 minutes: the device is hung or a step is far too large", what)
		}
		time.Sleep(nap)
		nap = min(2*nap, time.Millisecond)
	}
}

// mapRead maps a staging buffer, polling the device until it is ready.
func (d *Device) mapRead(b *wgpu.Buffer, size uint64) error {
	var status wgpu.BufferMapAsyncStatus
	var done atomic.Bool
	if err := b.MapAsync(wgpu.MapModeRead, 0, size, func(s wgpu.BufferMapAsyncStatus) {
		status = s
		done.Store(true)
	}); err != nil {
		return fmt.Errorf("map readback buffer: %w", err)
	}
	if err := d.pollUntil(&done, "readback"); err != nil {
		return err
	}
	if status != wgpu.BufferMapAsyncStatusSuccess {
		return fmt.Errorf("map readback buffer: %s", status)
	}
	return nil
}
