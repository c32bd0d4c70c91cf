package forwarder

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"porthole/wire"
)

// TestFileProblemsAreFileErrors: a file that cannot be read or used is a
// *FileError inside the *FieldError, so that callers can tell it (a runtime
// failure) from a bad value (bad usage); other refusals are not.
func TestFileProblemsAreFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	valid := func() Config {
		c := DefaultConfig()
		c.RelayAddr = "relay.example:7835"
		c.Tunnels = []Tunnel{{Proto: wire.ProtoHTTP, Upstream: "8000"}}
		return c
	}
	for _, c := range []struct {
		name  string
		edit  func(*Config)
		field string
		file  bool
	}{
		{"relay CA missing", func(c *Config) { c.RelayCAFile = missing }, "RelayCAFile", true},
		{"upstream CA missing", func(c *Config) { c.Tunnels[0].UpstreamCAFile = missing }, "UpstreamCAFile", true},
		{"token too long", func(c *Config) { c.Token = strings.Repeat("t", wire.MaxToken+1) }, "Token", false},
		{"instance id too long", func(c *Config) { c.InstanceID = strings.Repeat("i", wire.MaxInstanceID+1) }, "InstanceID", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := valid()
			c.edit(&cfg)
			err := cfg.Validate()
			var fe *FieldError
			var file *FileError
			if !errors.As(err, &fe) || fe.Field != c.field || errors.As(err, &file) != c.file {
				t.Fatalf("Validate = %v; want field %s, file error %v", err, c.field, c.file)
			}
			if c.file && (!errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing)) {
				t.Errorf("Validate = %v; want it to wrap fs.ErrNotExist and name the file", err)
			}
			if strings.Contains(err.Error(), strings.Repeat("t", 100)) {
				t.Errorf("the token reached the error: %v", err)
			}
		})
	}
}
