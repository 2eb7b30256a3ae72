package freqkv

import "fmt"

// Keep says which m of the L DCT-II coefficients of a span a compression keeps.
type Keep int

const (
	// KeepLow keeps X[0:m], the lowest frequencies: the method.
	KeepLow Keep = iota
	// KeepHigh keeps X[L-m:L], the highest: the paper's ablation.
	KeepHigh
)

func (k Keep) String() string {
	switch k {
	case KeepLow:
		return "low"
	case KeepHigh:
		return "high"
	}
	return fmt.Sprintf("Keep(%d)", int(k))
}

// ParseKeep is the inverse of Keep.String.
func ParseKeep(s string) (Keep, error) {
	switch s {
	case "low":
		return KeepLow, nil
	case "high":
		return KeepHigh, nil
	}
	return 0, fmt.Errorf("freqkv: keep %q: use low or high", s)
}

// MarshalText writes a Keep by name (JSON reports).
func (k Keep) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a Keep by name (saved cache states).
func (k *Keep) UnmarshalText(b []byte) (err error) {
	*k, err = ParseKeep(string(b))
	return err
}

// Scale is the factor c of a compression's output, y = c * DCT-III_m(Y), where Y are the
// m kept orthonormal DCT-II coefficients of the span x (L rows) and both transforms are
// orthonormal.
type Scale int

const (
	// ScaleAmplitude is c = sqrt(m/L), the method: with the lowest coefficients kept, the
	// mean of the m output rows equals the mean of the L input rows (the DC level).
	ScaleAmplitude Scale = iota
	// ScaleEnergy is c = 1: since DCT-III_m is orthonormal, sum_i y[i]^2 = sum_k Y[k]^2
	// per channel, so the output holds exactly the energy of the kept coefficients (all
	// of the span's energy but what the dropped coefficients held). Each row is then
	// sqrt(L/m) times its amplitude-scaled value.
	ScaleEnergy
)

func (s Scale) String() string {
	switch s {
	case ScaleAmplitude:
		return "amplitude"
	case ScaleEnergy:
		return "energy"
	}
	return fmt.Sprintf("Scale(%d)", int(s))
}

// ParseScale is the inverse of Scale.String.
func ParseScale(s string) (Scale, error) {
	switch s {
	case "amplitude":
		return ScaleAmplitude, nil
	case "energy":
		return ScaleEnergy, nil
	}
	return 0, fmt.Errorf("freqkv: scale %q: use amplitude or energy", s)
}

// MarshalText writes a Scale by name (JSON reports).
func (s Scale) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a Scale by name (saved cache states).
func (s *Scale) UnmarshalText(b []byte) (err error) {
	*s, err = ParseScale(string(b))
	return err
}
