package testvectors

import (
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

func trainAttentionParams(a *args) shaders.TrainAttentionParams {
	return shaders.TrainAttentionParams{T: a.int("T"), P: a.int("P"), Heads: a.int("heads"), KVHeads: a.int("kv_heads"),
		HeadDim: a.int("head_dim"), Scale: a.float("scale"), AccumulatePrefix: a.flag("acc_prefix"), AccumulateOwn: a.flag("acc_own")}
}

func init() {
	register("attention_train_fwd", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		p := trainAttentionParams(a)
		q, k, vv, out := a.in("q"), a.in("k"), a.in("v"), a.out("out")
		stats := a.scratch("stats", 2*p.T*p.Heads)
		got, err := a.submit(func(rec *engine.Recorder) error { return r.Ops.AttentionTrain(rec, q, k, vv, out, stats, p) },
			map[string]*engine.Tensor{"out": out, "stats": stats})
		if err != nil {
			return nil, err
		}
		lse := make([]float64, p.T*p.Heads)
		for i := range lse {
			lse[i] = got["stats"][2*i]
		}
		return map[string][]float64{"out": got["out"], "lse": lse}, nil
	})
	register("attention_train_bwd", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		p := trainAttentionParams(a)
		q, k, vv, out, dout, stats := a.in("q"), a.in("k"), a.in("v"), a.in("out"), a.in("dout"), a.in("stats0")
		dq, dk, dv := a.out("dq"), a.inout("dk"), a.inout("dv")
		return a.submit(func(rec *engine.Recorder) error {
			return r.Ops.AttentionTrainBackward(rec, q, k, vv, out, dout, stats, dq, dk, dv, p)
		}, map[string]*engine.Tensor{"dq": dq, "dk": dk, "dv": dv, "stats": stats})
	})
}
