package relay

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"

	"porthole/wire"
)

// tokenSet is the relay's accepted tokens, which ReloadTokens replaces while
// the relay runs. Each secret keeps its identity across reloads, so that
// its sessions, the names held for its reconnecting agents and its
// reservations stay with it.
type tokenSet struct {
	mu     sync.RWMutex
	tokens []Token
	ids    []identity          // ids[i] is tokens[i]'s identity
	known  map[string]identity // every secret accepted so far
	next   identity
}

// newTokenSet numbers the first tokens 0..n-1 and returns the names they
// reserve, by owner, for the registry.
func newTokenSet(tokens []Token) (*tokenSet, map[string]identity) {
	ts := &tokenSet{known: map[string]identity{}}
	_, _, static := ts.replace(tokens)
	return ts, static
}

// authenticate finds the token in constant time with respect to its value.
// Without tokens (NoAuth) every agent is anonymous.
func (ts *tokenSet) authenticate(secret string) (identity, bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	if len(ts.tokens) == 0 {
		return anonymous, true
	}
	found := -1
	for i, t := range ts.tokens {
		if subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return 0, false
	}
	return ts.ids[found], true
}

// replace installs tokens and returns the identities that are gone, how
// many are new, and the reserved names by owner.
func (ts *tokenSet) replace(tokens []Token) (removed map[identity]bool, added int, static map[string]identity) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	removed = map[identity]bool{}
	for _, id := range ts.ids {
		removed[id] = true
	}
	ts.tokens, ts.ids = tokens, make([]identity, len(tokens))
	static = map[string]identity{}
	for i, t := range tokens {
		id, ok := ts.known[t.Secret]
		if !ok {
			id, ts.next = ts.next, ts.next+1
			ts.known[t.Secret] = id
			added++
		}
		ts.ids[i] = id
		delete(removed, id)
		for _, n := range t.Names {
			static[n] = id
		}
	}
	for secret, id := range ts.known {
		if removed[id] {
			delete(ts.known, secret) // a token that comes back is a new identity
		}
	}
	return removed, added, static
}

// ReloadResult says what a ReloadTokens changed.
type ReloadResult struct {
	Tokens        int // tokens now accepted
	Added         int // tokens that are new
	Removed       int // tokens no longer accepted
	SessionsEnded int // sessions of removed tokens, ended with auth_failed
}

// ErrReloadNoAuth is ReloadTokens on a relay that runs without
// authentication.
var ErrReloadNoAuth = errors.New("relay: running without authentication (NoAuth); there are no tokens to reload")

// ReloadTokens replaces the accepted tokens and their reserved names
// without dropping sessions: agents whose token stays keep their sessions
// and tunnels, and the sessions of a removed token end with auth_failed.
// Tunnels already bound keep their names even if a reservation moved;
// reservations apply to binds from now on. A bad set of tokens changes
// nothing.
func (s *Server) ReloadTokens(tokens []Token) (ReloadResult, error) {
	if s.cfg.NoAuth {
		return ReloadResult{}, ErrReloadNoAuth
	}
	if len(tokens) == 0 {
		return ReloadResult{}, &ConfigError{Field: "Tokens", Err: ErrNoTokens}
	}
	if err := validateTokens(tokens, s.cfg.Domain); err != nil {
		return ReloadResult{}, err
	}
	removed, added, static := s.tokens.replace(tokens)
	s.reg.setStatic(static)
	res := ReloadResult{Tokens: len(tokens), Added: added, Removed: len(removed)}
	revoked := wire.Errorf(wire.CodeAuthFailed, "the relay no longer accepts this token")
	s.mu.Lock()
	for sess := range s.sessions {
		if removed[sess.owner] {
			sess.fail(revoked)
			res.SessionsEnded++
		}
	}
	s.mu.Unlock()
	s.log.Info("tokens reloaded", "tokens", res.Tokens, "added", res.Added, "removed", res.Removed, "sessions_ended", res.SessionsEnded)
	return res, nil
}

// validateTokens checks each token and its reserved names. Errors never
// include a token.
// A secret may appear once, and a name may be reserved by one token only.
func validateTokens(tokens []Token, domain string) error {
	secrets := map[string]int{}
	owners := map[string]int{}
	for i, t := range tokens {
		if t.Secret == "" {
			return fieldErr("Tokens", "token %d is empty", i+1)
		}
		if len(t.Secret) > wire.MaxToken {
			return fieldErr("Tokens", "token %d is longer than %d bytes", i+1, wire.MaxToken)
		}
		if j, ok := secrets[t.Secret]; ok {
			return fieldErr("Tokens", "token %d repeats token %d: list a token once, with all its names", i+1, j+1)
		}
		secrets[t.Secret] = i
		for _, n := range t.Names {
			if err := checkReservedName(n, domain); err != nil {
				return &ConfigError{Field: "Tokens", Err: fmt.Errorf("token %d: %w", i+1, err)}
			}
			if j, ok := owners[strings.ToLower(n)]; ok && j != i {
				return fieldErr("Tokens", "token %d reserves %q, which token %d reserves", i+1, n, j+1)
			}
			owners[strings.ToLower(n)] = i
		}
	}
	return nil
}
