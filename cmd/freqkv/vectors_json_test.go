package main

import (
	"encoding/json"
	"math"
	"testing"
)

// A failing vector's infinite or NaN error must still give valid JSON.
func TestJSONNumberNonFinite(t *testing.T) {
	for _, x := range []float64{math.Inf(1), math.Inf(-1), math.NaN(), 1.5e-7} {
		b, err := json.Marshal(map[string]any{"max_abs": jsonNumber(x)})
		if err != nil {
			t.Fatalf("%v: %v", x, err)
		}
		var back map[string]any
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%v gave invalid JSON %s: %v", x, b, err)
		}
	}
	if jsonNumber(2.5) != 2.5 {
		t.Fatal("a finite number must stay a number")
	}
}
