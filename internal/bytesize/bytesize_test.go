package bytesize

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"65536", 65536, true},
		{"256KiB", 256 << 10, true},
		{"16MiB", 16 << 20, true},
		{"16 MiB", 16 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1.5MiB", 3 << 19, true},
		{"0", 0, true},
		{"12B", 12, true},
		{"", 0, false},
		{"-1", 0, false},
		{"16MB", 0, false},
		{"lots", 0, false},
		{"99999999999GiB", 0, false},
	} {
		got, err := Parse(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{16 << 20: "16MiB", 1536 << 10: "1536KiB", 1 << 30: "1GiB", 1000: "1000", 0: "0"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
