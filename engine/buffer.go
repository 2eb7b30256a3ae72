package engine

import (
	"fmt"

	"github.com/cogentcore/webgpu/wgpu"
)

// Buffer is one device storage buffer. Sizes are rounded up to 4 bytes, plus
// one word of slack so kernels that read unaligned GGUF blocks (18 or 34
// bytes) with two-word loads stay inside the binding.
type Buffer struct {
	dev   *Device
	buf   *wgpu.Buffer
	size  uint64 // usable bytes, as asked for
	alloc uint64 // bytes allocated
	id    uint64 // unique per device, keys cached bind groups
	Label string
}

// NewBuffer allocates a storage buffer of at least size bytes. A buffer
// larger than the device's maxBufferSize is an error that names both sizes.
func (d *Device) NewBuffer(label string, size uint64) (*Buffer, error) {
	if size == 0 {
		size = 4
	}
	alloc := (size+3)&^3 + 4
	if alloc > d.Limits.MaxBufferSize {
		return nil, fmt.Errorf("buffer %q: %d bytes exceeds the device's maxBufferSize of %d bytes; split the tensor or use a smaller model/context", label, alloc, d.Limits.MaxBufferSize)
	}
	b, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{
		Label: label,
		Size:  alloc,
		// Uniform too: kernels may read small activations (a decode step's x)
		// through a uniform binding, the fast load path on CPU adapters.
		Usage: wgpu.BufferUsageStorage | wgpu.BufferUsageUniform | wgpu.BufferUsageCopySrc | wgpu.BufferUsageCopyDst,
	})
	if err != nil {
		return nil, fmt.Errorf("allocate buffer %q (%d bytes): %w", label, alloc, err)
	}
	d.allocated.Add(int64(alloc))
	return &Buffer{dev: d, buf: b, size: size, alloc: alloc, id: d.nextID.Add(1), Label: label}, nil
}

// Size is the usable size in bytes.
func (b *Buffer) Size() uint64 { return b.size }

// Release frees the buffer; using it afterwards is a programming error.
func (b *Buffer) Release() {
	if b == nil || b.buf == nil {
		return
	}
	b.dev.allocated.Add(-int64(b.alloc))
	b.buf.Destroy()
	b.buf.Release()
	b.buf = nil
}

// Write copies data into the buffer at offset (both multiples of 4 bytes,
// data padded by the caller if needed) through the queue.
func (b *Buffer) Write(offset uint64, data []byte) error {
	if offset%4 != 0 {
		return fmt.Errorf("write %q: offset %d is not a multiple of 4", b.Label, offset)
	}
	if offset+uint64(len(data)) > b.alloc {
		return fmt.Errorf("write %q: %d bytes at offset %d exceed its %d bytes", b.Label, len(data), offset, b.size)
	}
	if len(data)%4 != 0 {
		padded := make([]byte, (len(data)+3)&^3)
		copy(padded, data)
		data = padded
	}
	if len(data) == 0 {
		return nil
	}
	if err := b.dev.queue.WriteBuffer(b.buf, offset, data); err != nil {
		return fmt.Errorf("write %q: %w", b.Label, err)
	}
	return nil
}

// Read copies size bytes at offset back to the host, waiting for all
// submitted work that writes the buffer.
func (b *Buffer) Read(offset, size uint64) ([]byte, error) {
	rec := b.dev.NewRecorder()
	out := rec.ReadBack(b, offset, size)
	if err := rec.SubmitAndWait(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Binding is the part of a buffer that one shader binding sees.
type Binding struct {
	Buf    *Buffer
	Offset uint64
	Size   uint64 // 0: from Offset to the end of the allocation
}

// All binds the whole buffer.
func (b *Buffer) All() Binding { return Binding{Buf: b} }

// Range binds size bytes at offset.
func (b *Buffer) Range(offset, size uint64) Binding {
	return Binding{Buf: b, Offset: offset, Size: size}
}

func (bd Binding) size() uint64 {
	if bd.Size == 0 {
		return bd.Buf.alloc - bd.Offset
	}
	return bd.Size
}
