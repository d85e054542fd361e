package embedded

import (
	"encoding/json"
	"errors"
	"unicode/utf8"

	minitypes "github.com/truora/minidyn/types"
)

// errSlowPath reports an item line the fast decoder does not read; it goes to
// encoding/json instead.
var errSlowPath = errors.New("item line needs the general decoder")

// decodeItem decodes one snapshot item line (DynamoDB JSON, as writeSnapshot
// writes it) into minidyn's values. Almost every item the platform writes is a
// flat map of strings and numbers, which decodeFlatItem reads with four
// allocations and the map's (one string holding the line, the map, one slice of
// values, one of strings), where encoding/json makes two or three per attribute
// and reflects on each:
// decoding is most of the cost of a start. Any other line (a list, a map, a
// set, binary, an escaped string, whitespace) goes through encoding/json, so the
// result is the same either way (FuzzDecodeItem holds the two to that).
func decodeItem(line []byte) (map[string]*minitypes.Item, error) {
	if m, err := decodeFlatItem(line); err == nil {
		return m, nil
	}
	var m map[string]*minitypes.Item
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeFlatItem reads a line of the form
//
//	{"name":{"S":"text"},"n":{"N":"12"},"b":{"BOOL":true},"z":{"NULL":true}}
//
// with no whitespace and no backslash in any string, and returns errSlowPath for
// anything else. Names and values are slices of one copy of the line.
func decodeFlatItem(line []byte) (map[string]*minitypes.Item, error) {
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' || !utf8.Valid(line) {
		return nil, errSlowPath
	}
	// Attributes: one per `":{"` in the line, a bound that is exact for the
	// lines this reads (a string holding `":{"` only overcounts).
	n := 0
	for i := 0; i+3 < len(line); i++ {
		if line[i] == '"' && line[i+1] == ':' && line[i+2] == '{' && line[i+3] == '"' {
			n++
		}
	}
	s := string(line)
	vals := make([]minitypes.Item, n)
	texts := make([]string, n)
	m := make(map[string]*minitypes.Item, n)
	p := 1
	if s[p] == '}' {
		if p+1 != len(s) {
			return nil, errSlowPath
		}
		return m, nil
	}
	used := 0
	for {
		name, next, ok := flatString(s, p)
		if !ok || next+1 >= len(s) || s[next] != ':' || s[next+1] != '{' {
			return nil, errSlowPath
		}
		typ, next, ok := flatString(s, next+2)
		if !ok || next >= len(s) || s[next] != ':' || used == n {
			return nil, errSlowPath
		}
		p = next + 1
		v := &vals[used]
		used++
		switch typ {
		case "S", "N":
			text, next, ok := flatString(s, p)
			if !ok {
				return nil, errSlowPath
			}
			// minidyn's values point to strings: each points to its own
			// element of texts.
			texts[used-1] = text
			if typ == "S" {
				v.S = &texts[used-1]
			} else {
				v.N = &texts[used-1]
			}
			p = next
		case "BOOL", "NULL":
			var b bool
			switch {
			case len(s) >= p+4 && s[p:p+4] == "true":
				b, p = true, p+4
			case len(s) >= p+5 && s[p:p+5] == "false":
				b, p = false, p+5
			default:
				return nil, errSlowPath
			}
			if typ == "BOOL" {
				v.BOOL = &b
			} else {
				v.NULL = &b
			}
		default:
			return nil, errSlowPath
		}
		if p >= len(s) || s[p] != '}' {
			return nil, errSlowPath
		}
		m[name] = v
		p++
		if p >= len(s) {
			return nil, errSlowPath
		}
		switch s[p] {
		case ',':
			p++
		case '}':
			if p+1 != len(s) {
				return nil, errSlowPath
			}
			return m, nil
		default:
			return nil, errSlowPath
		}
	}
}

// flatString reads a JSON string with no escapes and no control characters
// starting at s[p] (the opening quote), and returns its text and the index after
// its closing quote.
func flatString(s string, p int) (string, int, bool) {
	if p >= len(s) || s[p] != '"' {
		return "", 0, false
	}
	for i := p + 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[p+1 : i], i + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}
