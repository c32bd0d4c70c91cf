package wire

import "fmt"

// ValidName checks a tunnel name: one DNS label of 1–63 lowercase letters,
// digits and hyphens, not starting or ending with a hyphen.
func ValidName(s string) error {
	if len(s) == 0 || len(s) > 63 {
		return Errorf(CodeNameInvalid, "name %q must be 1-63 characters", s)
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(s)-1
		if !ok {
			return Errorf(CodeNameInvalid, "name %q: use lowercase letters, digits and inner hyphens", s)
		}
	}
	return nil
}

// String implements fmt.Stringer for logs.
func (b Bind) String() string {
	return fmt.Sprintf("%s tunnel %d name=%q port=%d", b.Proto, b.TunnelID, b.Name, b.RemotePort)
}
