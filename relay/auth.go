package relay

import (
	"bufio"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"strings"
)

// ParseTokensFile reads a tokens file: one token per line, optionally
// followed by the names reserved for it, separated by spaces or commas.
// Blank lines and lines starting with # are ignored. Errors never include a
// token.
func ParseTokensFile(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	toks, err := parseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return toks, nil
}

func parseTokens(r io.Reader) ([]Token, error) {
	var out []Token
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
		out = append(out, Token{Secret: fields[0], Names: fields[1:]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	return out, nil
}

// identity is who an agent authenticated as: the index of its token, or
// anonymous when the relay has no tokens.
type identity int

const anonymous identity = -1

// authenticate finds the token in constant time with respect to its value.
func authenticate(tokens []Token, secret string) (identity, bool) {
	if len(tokens) == 0 {
		return anonymous, true
	}
	found := -1
	for i, t := range tokens {
		if subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) == 1 && found < 0 {
			found = i
		}
	}
	return identity(found), found >= 0
}
