package dynamo_test

import (
	"context"
	"slices"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

func TestModelCatalogue(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)

	// A shipped default, before any operator change.
	def, err := s.Model(ctx, "openai/gpt-4o-mini")
	if err != nil || def.InputPerMillion != 150_000 || def.OutputPerMillion != 600_000 {
		t.Fatalf("default = %+v, %v", def, err)
	}
	if _, err := s.Model(ctx, "openai/nope"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Fatalf("unknown model: %v, want not_found", err)
	}

	// An override of the default, and a new model, each seen at once.
	over := def
	over.InputPerMillion, over.Tiers = 200_000, []bulkhead.TierName{bulkhead.Enterprise}
	added := bulkhead.ModelEntry{Name: "openai/local-llama", Provider: "openai", ModelID: "local-llama",
		InputPerMillion: 1, OutputPerMillion: 2, ContextWindow: 8192, MaxOutputTokens: 1024}
	for _, e := range []bulkhead.ModelEntry{over, added} {
		if err := s.PutModel(ctx, e, t0); err != nil {
			t.Fatal(err)
		}
		got, err := s.Model(ctx, e.Name)
		if err != nil || !equalEntry(got, e) {
			t.Fatalf("Model(%s) = %+v, %v, want %+v", e.Name, got, err, e)
		}
	}

	// The whole catalogue, in pages of two: sorted, no duplicates, stored
	// entries in place of the defaults.
	var names []string
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := s.Models(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > 2 || pages > 20 {
			t.Fatalf("page of %d", len(p.Items))
		}
		for _, e := range p.Items {
			names = append(names, e.Name)
			if e.Name == over.Name && !equalEntry(e, over) {
				t.Errorf("listed %+v, want the override %+v", e, over)
			}
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if want := len(bulkhead.DefaultCatalogue()) + 1; len(names) != want || !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != want {
		t.Fatalf("names %v, want %d sorted distinct", names, want)
	}

	// The tier's list leaves out what the tier may not use.
	p, err := s.ModelsForTier(ctx, bulkhead.Starter, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Items {
		if !e.Allows(bulkhead.Starter) {
			t.Errorf("starter list has %s (%v)", e.Name, e.Tiers)
		}
		if e.Name == over.Name {
			t.Errorf("starter list has the enterprise-only override")
		}
	}

	// A cursor from another list, or none at all, is the caller's error.
	all, _ := s.Models(ctx, "", 1)
	for _, c := range []string{"garbage!", "AAAAAAAAAA", all.NextCursor} {
		if _, err := s.ModelsForTier(ctx, bulkhead.Starter, c, 1); !bulkhead.IsCode(err, bulkhead.Invalid) {
			t.Errorf("cursor %q: %v, want invalid", c, err)
		}
	}
}

func equalEntry(a, b bulkhead.ModelEntry) bool {
	return a.Name == b.Name && a.Provider == b.Provider && a.ModelID == b.ModelID && a.InputPerMillion == b.InputPerMillion &&
		a.OutputPerMillion == b.OutputPerMillion && slices.Equal(a.Tiers, b.Tiers) && a.ContextWindow == b.ContextWindow &&
		a.MaxOutputTokens == b.MaxOutputTokens
}
