// Package bytesize parses and prints sizes in bytes with binary units, as
// the command line takes them: "256KiB", "16MiB", "1GiB", or plain bytes.
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

var units = []struct {
	suffix string
	n      int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// Parse reads a size such as "16MiB", "256 KiB", "1.5GiB" or "65536".
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(v), u.n
			break
		}
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil && n >= 0 && n <= (1<<62)/mult {
		return n * mult, nil
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil && f >= 0 && f*float64(mult) < 1<<62 {
		return int64(f * float64(mult)), nil
	}
	return 0, fmt.Errorf("bad size %q: want a number of bytes, or one with KiB, MiB or GiB", s)
}

// Format prints n with the largest unit that divides it: "16MiB", "1536KiB".
func Format(n int64) string {
	for _, u := range units {
		if n >= u.n && n%u.n == 0 && u.n > 1 {
			return fmt.Sprintf("%d%s", n/u.n, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}

// Value is a size as a flag.Value.
type Value struct{ N *int64 }

func (v Value) String() string {
	if v.N == nil {
		return ""
	}
	return Format(*v.N)
}

// Set implements flag.Value.
func (v Value) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	*v.N = n
	return nil
}
