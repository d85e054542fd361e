package dynamo

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// TestCursorsContinueOnlyTheirQuery: a cursor decodes only for the query
// that made it, and only to a start key DynamoDB would accept for it (in
// the key range, a valid sort key), even when its tag is right.
func TestCursorsContinueOnlyTheirQuery(t *testing.T) {
	pk := tenantPK("tn_a")
	lo, hi := prefixExec+"2026-11-03", prefixExec+"2026-11-05~"
	records := &filterExpr{between: &[2]string{lo, hi}}
	scope := cursorScope(pk, prefixExec, records)
	cursor := encodeCursor(scope, key(pk, prefixExec+"2026-11-04#exe_1"))
	start, err := decodeCursor(scope, pk, cursor, prefixExec, records.between)
	if err != nil {
		t.Fatalf("own cursor refused: %v", err)
	}
	if sk := start[attrSK].(*types.AttributeValueMemberS).Value; sk != prefixExec+"2026-11-04#exe_1" {
		t.Errorf("start key %q", sk)
	}
	forged := func(sk string) string {
		return base64.RawURLEncoding.EncodeToString(append(append([]byte{}, scope...), sk...))
	}
	for _, edge := range []string{lo, hi} {
		if _, err := decodeCursor(scope, pk, forged(edge), prefixExec, records.between); err != nil {
			t.Errorf("cursor at the range's edge %q refused: %v", edge, err)
		}
	}
	other := func(pk, prefix string, f *filterExpr) []byte { return cursorScope(pk, prefix, f) }
	refused := map[string]struct {
		scope  []byte
		cursor string
	}{
		"another range":        {other(pk, prefixExec, &filterExpr{between: &[2]string{lo, prefixExec + "2026-11-06"}}), cursor},
		"another filter":       {other(pk, prefixExec, &filterExpr{between: records.between, expr: "agent_id = :aid", values: map[string]types.AttributeValue{":aid": str("agt_x")}}), cursor},
		"another tenant":       {other(tenantPK("tn_b"), prefixExec, records), cursor},
		"another list":         {other(pk, prefixAgent, nil), cursor},
		"before the range":     {scope, forged(prefixExec + "2026-11-02#exe_1")},
		"after the range":      {scope, forged(prefixExec + "2026-11-06#exe_1")},
		"another item type":    {scope, forged(prefixAgent + "agt_x")},
		"not UTF-8":            {scope, forged(prefixExec + "2026-11-04#\xff")},
		"longer than a key":    {scope, forged(prefixExec + "2026-11-04#" + strings.Repeat("x", maxSortKeyBytes))},
		"shorter than its tag": {scope, base64.RawURLEncoding.EncodeToString(scope[:3])},
		"not base64":           {scope, "!!"},
	}
	for name, c := range refused {
		if _, err := decodeCursor(c.scope, pk, c.cursor, prefixExec, records.between); !bulkhead.IsCode(err, bulkhead.Invalid) {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		}
	}
}

// TestItemJSONSize: an item's measured size is that of the JSON object of
// its plain values, as encoding/json writes it.
func TestItemJSONSize(t *testing.T) {
	item := map[string]types.AttributeValue{
		"s":  str(`<a href="x">&</a>` + "\u2028\n"),
		"n":  num(-123456),
		"b":  &types.AttributeValueMemberB{Value: []byte{1, 2, 3, 4}},
		"t":  &types.AttributeValueMemberBOOL{Value: false},
		"z":  &types.AttributeValueMemberNULL{Value: true},
		"ss": &types.AttributeValueMemberSS{Value: []string{"<", "b"}},
		"ns": &types.AttributeValueMemberNS{Value: []string{"1", "22"}},
		"l":  &types.AttributeValueMemberL{Value: []types.AttributeValue{str("x"), num(7), &types.AttributeValueMemberL{}}},
		"m":  &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"<k>": str("v"), "e": &types.AttributeValueMemberM{}}},
	}
	plain := map[string]any{
		"s": `<a href="x">&</a>` + "\u2028\n", "n": json.Number("-123456"), "b": []byte{1, 2, 3, 4}, "t": false, "z": nil,
		"ss": []string{"<", "b"}, "ns": []json.Number{"1", "22"}, "l": []any{"x", json.Number("7"), []any{}},
		"m": map[string]any{"<k>": "v", "e": map[string]any{}},
	}
	b, err := json.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if got := itemJSONSize(item); got != len(b) {
		t.Errorf("itemJSONSize = %d, want %d (%s)", got, len(b), b)
	}
}
