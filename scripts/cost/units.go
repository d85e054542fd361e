package main

import (
	"github.com/truora/minidyn/server"

	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// DynamoDB's published rules for item sizes and capacity units
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
// and .../read-write-operations.html), applied to items as they travel in
// DynamoDB's JSON protocol.

// item is a DynamoDB item (or key) of the JSON protocol, decoded into the
// embedded server's wire type.
type item = map[string]*server.AttributeValue

// itemSize is the item's size in bytes, by DynamoDB's rules (one
// implementation, the embedded server's: embedded.ItemSize).
func itemSize(it item) int { return embedded.ItemSize(it) }

const (
	readUnitBytes  = 4 << 10 // a read unit covers 4 KB
	writeUnitBytes = 1 << 10 // a write unit covers 1 KB
)

// units is how many blocks of unit bytes size takes, at least one: an item
// that does not exist (size 0) still costs the minimum.
func units(size, unit int) int {
	if size <= 0 {
		return 1
	}
	return (size + unit - 1) / unit
}

// readUnits is what reading size bytes costs: one unit per 4 KB strongly
// consistent, half that eventually consistent.
func readUnits(size int, consistent bool) float64 {
	u := float64(units(size, readUnitBytes))
	if !consistent {
		u /= 2
	}
	return u
}

// writeUnits is what writing an item costs: one unit per KB of the larger
// of the item before and after the write (a delete: the item deleted).
func writeUnits(before, after int) float64 {
	return float64(units(max(before, after), writeUnitBytes))
}
