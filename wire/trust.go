package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as
// lowercase hex, the form the relay prints and agents pin.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ParseFingerprint accepts a SHA-256 fingerprint as hex, with or without
// colons and an optional "sha256:" prefix, and returns it in Fingerprint's form.
func ParseFingerprint(s string) (string, error) {
	fp := strings.ToLower(strings.TrimSpace(s))
	fp = strings.TrimPrefix(fp, "sha256:")
	fp = strings.ReplaceAll(fp, ":", "")
	b, err := hex.DecodeString(fp)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("bad fingerprint %q: want 64 hex digits (SHA-256)", s)
	}
	return fp, nil
}
