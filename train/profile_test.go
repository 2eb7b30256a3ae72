package train_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/freqkv/freqkv/train"
	"github.com/stretchr/testify/require"
)

// TestProfileStep prints where a training step's time goes, per phase
// (forward, head, recompute, backward, adjoint, optimizer) and per kernel,
// from the GPU's timestamps, with the step's dispatches, submits and host
// waits and the unprofiled wall times of a step and a forward. A developer
// tool (minutes on lavapipe), run on demand:
//
//	FREQKV_TRAIN_PROFILE=stories260K go test ./train -run TestProfileStep -v -timeout 0
//	FREQKV_TRAIN_PROFILE=medium ...   (the synthetic medium model, 156M parameters)
func TestProfileStep(t *testing.T) {
	which := os.Getenv("FREQKV_TRAIN_PROFILE")
	if which == "" {
		t.Skip("a developer tool: set FREQKV_TRAIN_PROFILE=stories260K or medium")
	}
	dev := gputest.Device(t)
	if !dev.Timestamps {
		t.Skip("the adapter has no timestamp queries")
	}
	var (
		m   *llama.Model
		f   *gguf.File
		ids []int32
	)
	switch which {
	case "stories260K":
		m, f, ids, _ = storiesB(t, dev)
	case "medium":
		m, f, ids = mediumModel(t, dev)
	default:
		t.Fatalf("FREQKV_TRAIN_PROFILE=%q: want stories260K or medium", which)
	}
	for _, c := range benchPolicies() {
		if p := os.Getenv("FREQKV_TRAIN_POLICY"); p != "" && p != c.Kind.String() {
			continue
		}
		cfg := benchConfig(c)
		tr, err := train.New(m, f, cfg)
		require.NoError(t, err)
		data, err := train.NewData(ids, cfg.SeqLen, train.Text, 512, 1)
		require.NoError(t, err)
		seq := data.Next()
		opt := train.DefaultOptim(1e-3, 1)
		// warm the pipelines, then time a step and a forward unprofiled
		_, err = tr.Step([][]int32{seq}, opt)
		require.NoError(t, err)
		c0 := tr.Counts()
		start, cpu0 := time.Now(), cpuTime()
		_, err = tr.Step([][]int32{seq}, opt)
		require.NoError(t, err)
		step, stepCPU := time.Since(start), cpuTime()-cpu0
		c1 := tr.Counts()
		start, cpu0 = time.Now(), cpuTime()
		_, err = tr.Loss(seq)
		require.NoError(t, err)
		fwd, fwdCPU := time.Since(start), cpuTime()-cpu0
		c2 := tr.Counts()
		prof, err := dev.NewProfile()
		require.NoError(t, err)
		tr.Profile = prof
		_, err = tr.Step([][]int32{seq}, opt)
		require.NoError(t, err)
		tr.Profile = nil
		prof.Release()

		var out strings.Builder
		fmt.Fprintf(&out, "%s, %s, T = %d: step %.2f s (%.0f tok/s), forward %.2f s (%.0f tok/s), ratio %.2fx, training memory %.1f MiB\n",
			which, c.Kind, cfg.SeqLen, step.Seconds(), float64(cfg.SeqLen)/step.Seconds(), fwd.Seconds(), float64(cfg.SeqLen)/fwd.Seconds(),
			step.Seconds()/fwd.Seconds(), float64(tr.Bytes())/(1<<20))
		fmt.Fprintf(&out, "  CPU time (this process, all threads): step %.2f s, forward %.2f s, ratio %.2fx\n",
			stepCPU.Seconds(), fwdCPU.Seconds(), stepCPU.Seconds()/fwdCPU.Seconds())
		fmt.Fprintf(&out, "  step: %d dispatches, %d submits, %d waits; forward: %d dispatches, %d submits, %d waits\n",
			c1.Dispatches-c0.Dispatches, c1.Submits-c0.Submits, c1.Waits-c0.Waits,
			c2.Dispatches-c1.Dispatches, c2.Submits-c1.Submits, c2.Waits-c1.Waits)
		report(&out, prof)
		t.Log("\n" + out.String())
		tr.Release()
	}
}

// report writes GPU time per phase, then the largest kernels of each phase.
func report(out *strings.Builder, prof *engine.Profile) {
	type agg struct {
		name  string
		calls int
		total time.Duration
	}
	phases := map[string]*agg{}
	kernels := map[string][]agg{}
	var all time.Duration
	for _, k := range prof.Sorted() {
		ph, name, _ := strings.Cut(k.Name, "/")
		a := phases[ph]
		if a == nil {
			a = &agg{name: ph}
			phases[ph] = a
		}
		a.calls += k.Calls
		a.total += k.Total
		all += k.Total
		kernels[ph] = append(kernels[ph], agg{name, k.Calls, k.Total})
	}
	list := make([]*agg, 0, len(phases))
	for _, a := range phases {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].total > list[j].total })
	fmt.Fprintf(out, "  GPU time %.3f s (timestamps; each dispatch its own pass)\n", all.Seconds())
	for _, a := range list {
		fmt.Fprintf(out, "  %-20s %6d dispatches %8.1f ms %5.1f%%\n", a.name, a.calls, ms(a.total), 100*a.total.Seconds()/all.Seconds())
		for i, k := range kernels[a.name] {
			if i == 8 {
				break
			}
			fmt.Fprintf(out, "      %-40s %6d %8.1f ms %5.1f%%\n", k.name, k.calls, ms(k.total), 100*k.total.Seconds()/all.Seconds())
		}
	}
}

// cpuTime is the CPU time this process has used, all threads: on lavapipe
// the GPU's work is this process's threads, and their time is less
// disturbed than wall time by other processes on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return d.Seconds() * 1e3 }

// mediumModel writes bench's synthetic medium model (156M parameters, f16)
// to a temporary directory and loads it, with a token stream of random ids.
func mediumModel(t testing.TB, dev *engine.Device) (*llama.Model, *gguf.File, []int32) {
	path := filepath.Join(t.TempDir(), "medium.gguf")
	spec := synth.Medium()
	require.NoError(t, synth.Write(path, spec))
	f, err := llama.Open(path, llama.LoadOptions{BackwardTypes: true})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	m, err := llama.Load(dev, f, llama.LoadOptions{BackwardTypes: true})
	require.NoError(t, err)
	t.Cleanup(m.Release)
	ids := make([]int32, 8192)
	s := uint32(1)
	for i := range ids {
		s = s*1664525 + 1013904223
		ids[i] = int32(3 + s%uint32(spec.Vocab-3))
	}
	return m, f, ids
}

func benchPolicies() []kvcache.Spec {
	return []kvcache.Spec{
		{Kind: kvcache.Full, Size: 2048, Storage: engine.F32},
		{Kind: kvcache.Window, Size: 512, Sink: 4, Storage: engine.F32},
		{Kind: kvcache.FreqKV, Size: 512, Sink: 4, Ratio: 0.5, Storage: engine.F32},
	}
}

func benchConfig(c kvcache.Spec) train.Config {
	return train.Config{Cache: c, SeqLen: 2048, Rank: 8, Alpha: 16, Embeddings: true, Norms: true, Seed: 1}
}
