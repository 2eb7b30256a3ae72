package shaders

import (
	"fmt"
	"math"
	"sync"

	"github.com/freqkv/freqkv/engine"
)

// stage is a planned stage with its table on the device.
type stage struct {
	fftStage
	table *engine.Buffer
}

type stageKey struct {
	n, sign   int
	bluestein bool
}

// dctTables holds the device tables of every stage an Ops has run, made on first use and
// kept until Ops.Release: a compression then allocates nothing.
type dctTables struct {
	mu     sync.Mutex
	stages map[stageKey]*stage
}

// stage returns the plan of length n and direction sign, uploading its table on first use.
func (o *Ops) stage(n, sign int) (*stage, error) {
	t := &o.tables
	key := stageKey{n, sign, o.knobs.forceBluestein && n > 1}
	t.mu.Lock()
	defer t.mu.Unlock()
	if st, ok := t.stages[key]; ok {
		return st, nil
	}
	st := &stage{fftStage: planStage(n, sign, key.bluestein)}
	data := st.fftStage.table()
	buf, err := o.Dev.NewBuffer(fmt.Sprintf("dct tables n=%d sign=%d", n, sign), uint64(4*len(data)))
	if err != nil {
		return nil, err
	}
	if err := buf.Write(0, f32bytes(data)); err != nil {
		buf.Release()
		return nil, err
	}
	st.table = buf
	if t.stages == nil {
		t.stages = map[stageKey]*stage{}
	}
	t.stages[key] = st
	return st, nil
}

// release frees every table.
func (t *dctTables) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.stages {
		st.table.Release()
	}
	t.stages = nil
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		u := math.Float32bits(f)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return b
}
