package server

import (
	"time"

	"github.com/freqkv/freqkv/model/llama"
)

// gatherWindow is the longest the batcher waits for the other decoding
// sessions to join a step once one asks: they are normally microseconds
// behind (writing their last token to the client), while a step takes
// milliseconds.
const gatherWindow = 2 * time.Millisecond

// decodeReq asks for one decode step of a session.
type decodeReq struct {
	ctx     *llama.Context
	token   int32
	sampler *llama.Sampler
	history []int32
	reply   chan decodeRes
}

type decodeRes struct {
	next int32
	err  error
}

// batchLoop runs the decode steps of all sessions that want one as a
// single forward pass (llama.Batch) until stop closes.
func (s *Server) batchLoop() {
	defer close(s.batchDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var reqs []decodeReq
		select {
		case r := <-s.decodeCh:
			reqs = append(reqs, r)
		case <-s.stop:
			return
		}
		// Gather the others that are decoding, for a short while at most.
		timer.Reset(gatherWindow)
	gather:
		for len(reqs) < int(s.decoding.Load()) && len(reqs) < len(s.sessions) {
			select {
			case r := <-s.decodeCh:
				reqs = append(reqs, r)
			case <-timer.C:
				break gather
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		ctxs := make([]*llama.Context, len(reqs))
		toks := make([]int32, len(reqs))
		samplers := make([]*llama.Sampler, len(reqs))
		hists := make([][]int32, len(reqs))
		for i, r := range reqs {
			ctxs[i], toks[i], samplers[i], hists[i] = r.ctx, r.token, r.sampler, r.history
		}
		s.dev.Lock()
		next, err := s.batch.Step(ctxs, toks, samplers, hists)
		s.dev.Unlock()
		s.metrics.mu.Lock()
		s.metrics.batchRows.observeN(len(reqs))
		s.metrics.mu.Unlock()
		for i, r := range reqs {
			res := decodeRes{err: err}
			if err == nil {
				res.next = next[i]
			}
			r.reply <- res
		}
	}
}

// decoder returns the decode function of one request's session.
func (s *Server) decoder(se *session, started *bool) func(int32, *llama.Sampler, []int32) (int32, error) {
	reply := make(chan decodeRes, 1)
	return func(tok int32, sm *llama.Sampler, history []int32) (int32, error) {
		if !*started {
			*started = true
			s.decoding.Add(1)
		}
		s.decodeCh <- decodeReq{ctx: se.ctx, token: tok, sampler: sm, history: history, reply: reply}
		// Always wait for the step: the session may be reset only after it.
		r := <-reply
		return r.next, r.err
	}
}
