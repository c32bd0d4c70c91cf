package relay

import (
	"bufio"
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

// identity is who an agent authenticated as: a number its token keeps
// across reloads (see tokenSet), or anonymous when the relay has no tokens.
type identity int

const anonymous identity = -1
