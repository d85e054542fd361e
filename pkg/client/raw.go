package client

import (
	"bytes"
	"encoding/json"
)

// rawJSON keeps an answer as the API sent it. The types that embed it
// (Tenant, CatalogueModel, CloseReport, Key and NewKey) have a RawJSON method:
// a program that shows or forwards the answer can use the API's own bytes,
// its fields in the API's order and fields this package does not know
// included, rather than re-encoding the typed value.
type rawJSON struct{ raw json.RawMessage }

// RawJSON returns the JSON the value was decoded from: the whole answer, or
// its item of a list page. It is nil for a value not decoded from an answer.
func (r rawJSON) RawJSON() json.RawMessage { return r.raw }

func (r *rawJSON) setRawJSON(b []byte) { r.raw = b }

// rawSetter is a value that keeps the JSON it was decoded from.
type rawSetter interface{ setRawJSON([]byte) }

// listItem decodes one item of a list page, keeping its JSON when the item
// type wants it.
type listItem[T any] struct{ v T }

func (it *listItem[T]) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &it.v); err != nil {
		return err
	}
	if s, ok := any(&it.v).(rawSetter); ok {
		// b belongs to the decoder: keep a copy.
		s.setRawJSON(bytes.Clone(b))
	}
	return nil
}
