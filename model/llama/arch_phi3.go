package llama

import (
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model"
)

// qkv uploads a layer's query, key and value projections: three matrices,
// or phi3's fused attn_qkv split by rows (Q's, then K's, then V's) into
// three weights of the file's bytes.
func (u *uploader) qkv(p string, h model.HParams) (wq, wk, wv *engine.Weight) {
	if !h.FusedQKV {
		return u.weight(p + "attn_q.weight"), u.weight(p + "attn_k.weight"), u.weight(p + "attn_v.weight")
	}
	ws := u.split(p+"attn_qkv.weight", h.Heads*h.HeadDim(), h.KVDim(), h.KVDim())
	if ws == nil {
		return nil, nil, nil
	}
	return ws[0], ws[1], ws[2]
}

// gateUp uploads a layer's gate and up projections: two matrices, or phi3's
// ffn_up holding the gate's rows then the up projection's.
func (u *uploader) gateUp(p string, h model.HParams) (gate, up *engine.Weight) {
	if !h.FusedGateUp {
		return u.weight(p + "ffn_gate.weight"), u.weight(p + "ffn_up.weight")
	}
	ws := u.split(p+"ffn_up.weight", h.FFN, h.FFN)
	if ws == nil {
		return nil, nil
	}
	return ws[0], ws[1]
}
