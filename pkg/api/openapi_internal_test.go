package api

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAPIMatchesEndpoints holds the document to what only the handlers'
// table knows: each operation's one success status is the endpoint's, and
// exactly the idempotent endpoints take Idempotency-Key and answer
// Idempotent-Replayed.
func TestOpenAPIMatchesEndpoints(t *testing.T) {
	b, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc specNode
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	a := New(Config{})
	paths := obj(doc["paths"])
	for key, ep := range a.endpoints {
		method, path, _ := strings.Cut(key, " ")
		op := obj(obj(paths[path])[strings.ToLower(method)])
		if op == nil {
			t.Errorf("%s: no operation", key)
			continue
		}
		var success []string
		for status := range obj(op["responses"]) {
			if strings.HasPrefix(status, "2") {
				success = append(success, status)
			}
		}
		if want := strconv.Itoa(ep.status); len(success) != 1 || success[0] != want {
			t.Errorf("%s: success responses %v, want only %s", key, success, want)
		}
		takesKey := false
		for _, p := range arr(op["parameters"]) {
			if str(obj(p)["$ref"]) == "#/components/parameters/IdempotencyKey" {
				takesKey = true
			}
		}
		replayed := false
		for _, status := range success {
			if _, ok := obj(resolve(doc, obj(op["responses"])[status])["headers"])[ReplayedHeader]; ok {
				replayed = true
			}
		}
		if takesKey != ep.idempotent || replayed != ep.idempotent {
			t.Errorf("%s: Idempotency-Key parameter %v, Idempotent-Replayed header %v; the endpoint is idempotent: %v",
				key, takesKey, replayed, ep.idempotent)
		}
	}
}
