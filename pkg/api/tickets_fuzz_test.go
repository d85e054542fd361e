package api_test

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// FuzzPatchTicketBody: PATCH /v1/tickets/{ticket_id}. An accepted patch
// moves the version by one, sets only status and priority, to values of
// theirs, and reads back as answered; a refused one writes nothing.
func FuzzPatchTicketBody(f *testing.F) {
	p := newFuzzPlatform(f)
	bodySeeds(f,
		`{"status":"closed"}`, `{"status":"pending","priority":"low"}`, `{"priority":"urgent"}`, `{"status":"open"}`,
		`{"status":"done"}`, `{"priority":"critical"}`, `{"status":null}`, `{"status":"closed","body":"x"}`,
		`{"status":"closed","status":"open"}`, `{"STATUS":"closed"}`, `{"priority":"high","priority":7}`,
	)
	path := "/v1/tickets/" + p.h.newTicket(p.tenant, "call_fuzz")
	f.Fuzz(func(t *testing.T, body []byte) {
		before := p.send(t, "GET", path, p.tenant.key, nil)
		r := p.send(t, "PATCH", path, p.tenant.key, body)
		if !answered(t, "patch ticket", r, 200) {
			p.refusedCleanly(t, "patch ticket", r)
			return
		}
		if num(t, r.body["version"]) != num(t, before.body["version"])+1 {
			t.Fatalf("patch moved version %v -> %v", before.body["version"], r.body["version"])
		}
		if !bulkhead.TicketStatus(r.str("status")).Valid() || !bulkhead.TicketPriority(r.str("priority")).Valid() {
			t.Fatalf("patched to %s", r.raw)
		}
		for _, k := range []string{"ticket_id", "subject", "body", "execution_id", "agent_id", "created_at"} {
			if r.body[k] != before.body[k] {
				t.Fatalf("patch changed %s: %v -> %v", k, before.body[k], r.body[k])
			}
		}
		if got := p.send(t, "GET", path, p.tenant.key, nil); !sameJSON(got.body, r.body) {
			t.Fatalf("patched to %s, read back %s", r.raw, got.raw)
		}
	})
}

// FuzzTicketsQuery: GET /v1/tickets with arbitrary ?status=, ?limit= and
// ?cursor=. Never a 5xx; a refusal is the error shape; an accepted list has
// at most limit tickets, all of the status asked for, and its next_cursor,
// sent back with the same status, is accepted.
func FuzzTicketsQuery(f *testing.F) {
	p := newFuzzPlatform(f)
	for i := range 4 {
		id := p.h.newTicket(p.tenant, "call_"+strconv.Itoa(i))
		if i < 2 {
			p.h.must(200, "PATCH", "/v1/tickets/"+id, p.tenant.key, map[string]any{"status": bulkhead.TicketStatuses[i+1]})
		}
	}
	for _, s := range []struct{ status, limit, cursor string }{
		{"", "1", ""}, {"open", "2", ""}, {"closed", "100", ""}, {"pending", "0", ""}, {"OPEN", "", ""}, {"open ", "1", ""},
		{"open", "1", "!!"}, {"open", "1", "VElDS0VUIw"}, {"", "1", "VFNUQVRVUyNvcGVuIw"}, {"\x00", "-1", "x"},
	} {
		f.Add(s.status, true, s.limit, s.cursor)
		f.Add(s.status, false, s.limit, s.cursor)
	}
	f.Fuzz(func(t *testing.T, status string, withStatus bool, limit, cursor string) {
		q := url.Values{}
		if withStatus {
			q.Set("status", status)
		}
		if limit != "" {
			q.Set("limit", limit)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := p.send(t, "GET", "/v1/tickets?"+q.Encode(), p.tenant.key, nil)
		if !answered(t, "list tickets", r, 200) {
			return
		}
		if withStatus && !bulkhead.TicketStatus(status).Valid() {
			t.Fatalf("status %q accepted", status)
		}
		data, _ := r.body["data"].([]any)
		max := bulkhead.DefaultPageSize
		if limit != "" {
			n, err := strconv.Atoi(limit)
			if err != nil {
				t.Fatalf("limit %q accepted", limit)
			}
			max = n
		}
		if len(data) > max {
			t.Fatalf("%d tickets with limit %q", len(data), limit)
		}
		for _, d := range data {
			if st := d.(map[string]any)["status"]; withStatus && st != status {
				t.Fatalf("status %q lists a ticket that is %v", status, st)
			}
		}
		if next, _ := r.body["next_cursor"].(string); next != "" {
			q.Set("cursor", next)
			if n := p.send(t, "GET", "/v1/tickets?"+q.Encode(), p.tenant.key, nil); n.status != 200 {
				t.Fatalf("next_cursor refused: %d %s", n.status, n.raw)
			}
		}
	})
}
