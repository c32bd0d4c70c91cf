package relay

import (
	"maps"
	"testing"
)

// TestTokenIdentitiesSurviveReloads: a token keeps its identity across
// reloads whatever its line, a new token gets a new one, and a removed
// token's identity is reported and never reused.
func TestTokenIdentitiesSurviveReloads(t *testing.T) {
	ts, first := newTokenSet([]Token{{Secret: "a", Names: []string{"app"}}, {Secret: "b"}})
	a, _ := ts.authenticate("a")
	if want := map[string]identity{"app": a}; !maps.Equal(first, want) {
		t.Errorf("first reserved names %v, want %v", first, want)
	}
	b, _ := ts.authenticate("b")

	removed, added, static := ts.replace([]Token{{Secret: "c"}, {Secret: "b", Names: []string{"app", "web"}}})
	if len(removed) != 1 || !removed[a] || added != 1 {
		t.Errorf("removed %v, added %d; want {%v} and 1", removed, added, a)
	}
	if id, ok := ts.authenticate("b"); !ok || id != b {
		t.Errorf("b is now %v (ok %v), was %v", id, ok, b)
	}
	if _, ok := ts.authenticate("a"); ok {
		t.Error("removed token still accepted")
	}
	c, _ := ts.authenticate("c")
	if c == a || c == b {
		t.Errorf("new token got an old identity %v", c)
	}
	if want := map[string]identity{"app": b, "web": b}; !maps.Equal(static, want) {
		t.Errorf("reserved names %v, want %v", static, want)
	}

	ts.replace([]Token{{Secret: "a"}, {Secret: "b"}, {Secret: "c"}})
	if id, _ := ts.authenticate("a"); id == a {
		t.Error("a token that came back got its old identity (and so its old sessions' names)")
	}
}
