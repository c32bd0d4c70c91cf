package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps fences the headless packages: they must build without cgo and
// never pull in the GUI or the OS keyring.
func TestDeps(t *testing.T) {
	forbidden := []struct {
		pkgs   []string
		prefix string
		why    string
	}{
		{[]string{"porthole/cmd/porthole", "porthole/relay", "porthole/wire", "porthole/forwarder"}, "fyne.io/",
			"the relay and agent run headless on servers without cgo or a display"},
		{[]string{"porthole/relay", "porthole/wire"}, "github.com/zalando/go-keyring",
			"the relay never holds a user's secrets"},
		{[]string{"porthole/inspect"}, "fyne.io/",
			"the inspector is served by the headless agent too"},
		{[]string{"porthole/inspect"}, "github.com/zalando/go-keyring",
			"the inspector shows traffic, never the keyring's secrets"},
	}
	for _, f := range forbidden {
		args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, f.pkgs...)
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, f.prefix) {
				t.Errorf("%v imports %s: %s", f.pkgs, dep, f.why)
			}
		}
	}
}
