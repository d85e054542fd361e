package embedded

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/truora/minidyn/server"
)

// TestValueSize checks the sizes of DynamoDB's "Item sizes and formats" page.
func TestValueSize(t *testing.T) {
	s := func(v string) *server.AttributeValue { return &server.AttributeValue{S: aws.String(v)} }
	n := func(v string) *server.AttributeValue { return &server.AttributeValue{N: aws.String(v)} }
	cases := []struct {
		name string
		v    *server.AttributeValue
		want int
	}{
		{"ascii string", s("abc"), 3},
		{"utf-8 string", s("é€"), 5},
		{"zero", n("0"), 1},
		{"one digit", n("7"), 2},
		{"two digits", n("42"), 2},
		{"three digits", n("123"), 3},
		{"zeros trimmed", n("-000120.5000"), 3}, // 1205
		{"exponent", n("1.5E+10"), 2},           // 15
		{"38 digits", n("12345678901234567890123456789012345678"), 20},
		{"binary", &server.AttributeValue{B: []byte{0, 1, 2}}, 3},
		{"bool", &server.AttributeValue{BOOL: aws.Bool(false)}, 1},
		{"null", &server.AttributeValue{NULL: aws.Bool(true)}, 1},
		{"string set", &server.AttributeValue{SS: []*string{aws.String("ab"), aws.String("c")}}, 3},
		{"number set", &server.AttributeValue{NS: []*string{aws.String("1"), aws.String("100")}}, 4},
		{"empty list", &server.AttributeValue{L: []*server.AttributeValue{}}, 3},
		{"list", &server.AttributeValue{L: []*server.AttributeValue{s("ab"), n("1")}}, 3 + 1 + 2 + 1 + 2},
		{"map", &server.AttributeValue{M: map[string]*server.AttributeValue{"k": s("ab")}}, 3 + 1 + 1 + 2},
	}
	for _, tc := range cases {
		if got := valueSize(tc.v); got != tc.want {
			t.Errorf("valueSize(%s) = %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := ItemSize(map[string]*server.AttributeValue{"PK": s("a"), "n": n("12")}); got != 2+1+1+2 {
		t.Errorf("itemSize = %d, want 6", got)
	}
}
