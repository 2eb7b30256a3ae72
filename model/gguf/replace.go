package gguf

import "fmt"

// WithTensors returns a File with f's metadata and tensors in which each tensor named in
// replace takes the given type, dimensions and data (kept in memory, not copied), while the
// others are still read from f. It is how a model is patched at load time (e.g. merged with
// an adapter) without copying the rest of the file. The new File owns f: closing it closes f,
// and f must not be closed separately.
func (f *File) WithTensors(replace []WriteTensor) (*File, error) {
	if f.data == nil {
		return nil, ErrClosed
	}
	nf := &File{
		Version:    f.Version,
		Alignment:  f.Alignment,
		DataOffset: f.DataOffset,
		Tensors:    make([]TensorInfo, len(f.Tensors)),
		keys:       f.keys,
		values:     f.values,
		tensors:    f.tensors,
		data:       f.data,
		release:    f.Close,
		replaced:   make(map[string][]byte, len(f.replaced)+len(replace)),
	}
	for name, data := range f.replaced {
		nf.replaced[name] = data
	}
	for i, t := range f.Tensors {
		t.Dims = append([]uint64(nil), t.Dims...)
		nf.Tensors[i] = t
	}
	seen := make(map[string]bool, len(replace))
	for _, r := range replace {
		i, ok := f.tensors[r.Name]
		if !ok {
			return nil, fmt.Errorf("gguf: replacing tensor %q: the file has no such tensor", r.Name)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("gguf: replacing tensor %q twice", r.Name)
		}
		seen[r.Name] = true
		if err := checkShape(r.Dims, r.Type); err != nil {
			return nil, fmt.Errorf("gguf: replacing tensor %q: %w", r.Name, err)
		}
		t := TensorInfo{Name: r.Name, Dims: append([]uint64(nil), r.Dims...), Type: r.Type, Offset: nf.Tensors[i].Offset}
		if uint64(len(r.Data)) != t.Bytes() {
			return nil, fmt.Errorf("gguf: replacing tensor %q: %d bytes of data for %d", r.Name, len(r.Data), t.Bytes())
		}
		nf.Tensors[i] = t
		nf.replaced[r.Name] = r.Data
	}
	return nf, nil
}
