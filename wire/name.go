package wire

import (
	"fmt"
	"strings"
)

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

// ValidHostname checks a full hostname for a tunnel (Bind.Hostname): two
// or more labels, each as ValidName, at most 253 characters in all.
func ValidHostname(s string) error {
	labels := strings.Split(s, ".")
	if len(s) > 253 || len(labels) < 2 {
		return Errorf(CodeNameInvalid, "hostname %q: want a full DNS name such as app.example.com", s)
	}
	for _, l := range labels {
		if ValidName(l) != nil {
			return Errorf(CodeNameInvalid, "hostname %q: use lowercase letters, digits and inner hyphens in each label", s)
		}
	}
	return nil
}

// String implements fmt.Stringer for logs.
func (b Bind) String() string {
	if b.Hostname != "" {
		return fmt.Sprintf("%s tunnel %d hostname=%q", b.Proto, b.TunnelID, b.Hostname)
	}
	return fmt.Sprintf("%s tunnel %d name=%q port=%d", b.Proto, b.TunnelID, b.Name, b.RemotePort)
}
