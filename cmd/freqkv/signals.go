package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/freqkv/freqkv/internal/outfile"
)

// On SIGINT or SIGTERM every command removes the temporary files of writes
// in progress (outfile), runs the hook a command set (perplexity prints its
// partial summary), and then dies of the same signal, so the shell sees the
// signal's status (130 for SIGINT, 143 for SIGTERM).

var (
	hookMu     sync.Mutex
	signalHook func()
)

// onSignal sets fn to run on SIGINT or SIGTERM; stop removes it.
func onSignal(fn func()) (stop func()) {
	hookMu.Lock()
	signalHook = fn
	hookMu.Unlock()
	return func() {
		hookMu.Lock()
		signalHook = nil
		hookMu.Unlock()
	}
}

// handleSignals starts the handler; run calls it once.
func handleSignals() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		hookMu.Lock()
		if signalHook != nil {
			signalHook()
		}
		outfile.RemoveTemporary()
		signal.Reset(sig)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Signal(sig)
		}
		time.Sleep(time.Second) // the signal is on its way; exit by hand if not
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
}
