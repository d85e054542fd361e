package embedded

import (
	"encoding/json"
	"reflect"
	"testing"

	minitypes "github.com/truora/minidyn/types"
)

// FuzzDecodeItem holds decodeItem to encoding/json: for any line, both fail or
// both give the same item, and a line the fast path reads gives the same item
// through encoding/json.
func FuzzDecodeItem(f *testing.F) {
	for _, s := range []string{
		`{"PK":{"S":"TENANT#t1"},"SK":{"S":"USAGE#2026-05#000000001"},"tokens_in":{"N":"1834"}}`,
		`{}`, `{"a":{"BOOL":true},"b":{"NULL":true},"c":{"BOOL":false}}`,
		`{"a":{"S":""}}`, `{"a":{"S":"x"},"a":{"N":"1"}}`, `{"a":{"s":"x"}}`,
		`{"a":{"S":"caf\u00e9"}}`, `{"a":{"S":"café"}}`, `{"a":{"L":[{"S":"x"},{"N":"2"}]}}`,
		`{"a":{"M":{"b":{"S":"c"}}}}`, `{"a":{"SS":["x","y"]}}`, `{"a":{"B":"aGk="}}`,
		`{"a":{"S":"x","N":"1"}}`, `{ "a" : {"S":"x"} }`, `{"a":{"S":"x"}}x`, `{"a":{"N":null}}`,
		`{"a":{"S":"\":{\""}}`, `{"a":{"S":"\":{\"x"},"b":{"N":"1"}}`, "{\"a\":{\"S\":\"\xff\"}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fast, fastErr := decodeItem(line)
		var want map[string]*minitypes.Item
		wantErr := json.Unmarshal(line, &want)
		if (fastErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: decodeItem error %v, encoding/json error %v", line, fastErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: decodeItem gives %s, encoding/json %s", line, dump(fast), dump(want))
		}
		if flat, err := decodeFlatItem(line); err == nil && !reflect.DeepEqual(flat, want) {
			t.Fatalf("%q: the fast path gives %s, encoding/json %s", line, dump(flat), dump(want))
		}
	})
}

func dump(m map[string]*minitypes.Item) string {
	b, _ := json.Marshal(m)
	return string(b)
}
