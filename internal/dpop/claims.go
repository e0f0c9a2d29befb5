package dpop

import (
	"bytes"
	"encoding/json"
)

// parseClaims decodes a proof's claims. A proof is a small flat object of
// plain strings and an integer, and flatClaims reads that shape in place;
// anything else (escapes, non-ASCII, nested values, other claims, other
// number forms, null) goes to encoding/json, which flatClaims agrees with
// wherever it answers (FuzzParseClaims).
func parseClaims(body []byte) (claims, error) {
	if c, ok := flatClaims(body); ok {
		return c, nil
	}
	// A copy: body may be the caller's stack buffer, which must not escape.
	c := new(claims)
	err := json.Unmarshal(bytes.Clone(body), c)
	return *c, err
}

// flatClaims reads {"key":value,…} where every key is one of the claims'
// names exactly and every value a plain string or a small integer. ok is
// false for anything else, which is not an error: the caller decodes it the
// general way.
func flatClaims(b []byte) (c claims, ok bool) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return c, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return c, skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return c, false
		}
		i = skipSpace(b, j)
		if i == len(b) || b[i] != ':' {
			return c, false
		}
		i = skipSpace(b, i+1)
		var s *string
		switch string(key) {
		case "jti":
			s = &c.JTI
		case "htm":
			s = &c.HTM
		case "htu":
			s = &c.HTU
		case "ath":
			s = &c.ATH
		case "nonce":
			s = &c.Nonce
		case "iat":
			if c.IAT, j, ok = smallInt(b, i); !ok {
				return c, false
			}
		default:
			return c, false
		}
		if s != nil {
			var v []byte
			if v, j, ok = plainString(b, i); !ok {
				return c, false
			}
			*s = string(v)
		}
		i = skipSpace(b, j)
		switch {
		case i == len(b):
			return c, false
		case b[i] == ',':
			i = skipSpace(b, i+1)
		case b[i] == '}':
			return c, skipSpace(b, i+1) == len(b)
		default:
			return c, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] of printable ASCII without
// escapes, and returns its contents and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i == len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, i, false
		}
	}
	return nil, i, false
}

// smallInt reads a JSON integer of at most 18 digits at b[i].
func smallInt(b []byte, i int) (int64, int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || (digits > 1 && b[start] == '0') {
		return 0, i, false
	}
	// A fraction or exponent makes it a number that is not an integer
	// literal: the general decoder says what that means.
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, i, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}
