package dynamo

import (
	"encoding/base64"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// cursorPK is the caller's own partition, which a cursor never chooses.
const cursorPK = "TENANT#tn_aaaaaaaaaaaaaaaa"

// cursorPrefixes are the item types the lists page through.
var cursorPrefixes = []string{prefixAgent, prefixConv, prefixKey, prefixExec, prefixInv, prefixTenant, prefixAgentConv}

func skOf(tb testing.TB, k map[string]types.AttributeValue) (pk, sk string) {
	tb.Helper()
	p, ok1 := k[attrPK].(*types.AttributeValueMemberS)
	s, ok2 := k[attrSK].(*types.AttributeValueMemberS)
	if !ok1 || !ok2 || len(k) != 2 {
		tb.Fatalf("start key %v is not a string PK and SK", k)
	}
	return p.Value, s.Value
}

// FuzzCursor: a list cursor from the client is refused as invalid_request
// unless it was made for the same query (its scope) and names an item of the
// listed type, and then it starts in the caller's own partition whatever it
// holds; a cursor the store hands out comes back as the same start key, is
// the same string when re-encoded, and is refused by any other query.
func FuzzCursor(f *testing.F) {
	for i, p := range cursorPrefixes {
		f.Add(uint8(i), base64.RawURLEncoding.EncodeToString(append(cursorScope(cursorPK, p, nil), p+"agt_abcdefghijklmnop"...)))
	}
	for _, c := range []string{"", "!!", "Q09OViN4", "QUdFTlQj", "QUdFTlQ", "QUdFTlQjeA==", "QUdFTlQjeA\n", "QUdFTlQjeB",
		"VEVOQU5UI3RuX2JiYmJiYmJiYmJiYmJiYmIjQUdFTlQj", "QUdFTlQj_w", "%41", "QUdFTlQj\x00"} {
		f.Add(uint8(0), c)
	}
	f.Fuzz(func(t *testing.T, which uint8, cursor string) {
		prefix := cursorPrefixes[int(which)%len(cursorPrefixes)]
		scope := cursorScope(cursorPK, prefix, nil)
		other := cursorScope(cursorPK, cursorPrefixes[(int(which)+1)%len(cursorPrefixes)], nil)
		start, err := decodeCursor(scope, cursorPK, cursor, prefix, nil)
		switch {
		case err != nil:
			if !bulkhead.IsCode(err, bulkhead.Invalid) {
				t.Fatalf("decodeCursor(%q): error %v, want invalid_request", cursor, err)
			}
		case cursor == "":
			if start != nil {
				t.Fatalf("the empty cursor starts at %v, want the beginning", start)
			}
		default:
			pk, sk := skOf(t, start)
			if pk != cursorPK || !strings.HasPrefix(sk, prefix) {
				t.Fatalf("cursor %q starts at %s / %q: outside the caller's %s items", cursor, pk, sk, prefix)
			}
			// Base64 has a few spellings of one byte string (unused trailing
			// bits, line breaks); they all mean the same start key, and the
			// store's own spelling is the canonical one.
			again, err := decodeCursor(scope, cursorPK, encodeCursor(scope, start), prefix, nil)
			if err != nil || !maps.EqualFunc(again, start, sameS) {
				t.Fatalf("cursor %q re-encoded as %q decodes to %v, %v", cursor, encodeCursor(scope, start), again, err)
			}
			if canonical := base64.RawURLEncoding.EncodeToString(append(slices.Clip(scope), sk...)); cursor == canonical && encodeCursor(scope, start) != cursor {
				t.Fatalf("cursor %q re-encodes as %q", cursor, encodeCursor(scope, start))
			}
		}

		// The cursor of a page that ended at an item with this sort key (a
		// sort key DynamoDB could hold: valid UTF-8, at most 1,024 bytes).
		sk := prefix + cursor
		if !utf8.ValidString(sk) || len(sk) > maxSortKeyBytes {
			return
		}
		next := encodeCursor(scope, key(cursorPK, sk))
		back, err := decodeCursor(scope, cursorPK, next, prefix, nil)
		if err != nil {
			t.Fatalf("the store's cursor %q for %q was refused: %v", next, sk, err)
		}
		if _, got := skOf(t, back); got != sk {
			t.Fatalf("the store's cursor %q for %q starts at %q", next, sk, got)
		}
		if _, err := decodeCursor(other, cursorPK, next, prefix, nil); !bulkhead.IsCode(err, bulkhead.Invalid) {
			t.Fatalf("the cursor %q of one query was accepted by another: %v", next, err)
		}
	})
}

func sameS(a, b types.AttributeValue) bool {
	x, ok1 := a.(*types.AttributeValueMemberS)
	y, ok2 := b.(*types.AttributeValueMemberS)
	return ok1 && ok2 && x.Value == y.Value
}
