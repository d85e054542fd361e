package main

import (
	"encoding/base64"
	"strings"
)

// DynamoDB's published rules for item sizes and capacity units
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
// and .../read-write-operations.html), applied to items as they travel in
// DynamoDB's JSON protocol.

// attrValue is one attribute value of the JSON protocol. A present list,
// map or set decodes to a non-nil slice or map, even when empty.
type attrValue struct {
	S    *string              `json:"S"`
	N    *string              `json:"N"`
	B    *string              `json:"B"`
	BOOL *bool                `json:"BOOL"`
	NULL *bool                `json:"NULL"`
	L    []attrValue          `json:"L"`
	M    map[string]attrValue `json:"M"`
	SS   []string             `json:"SS"`
	NS   []string             `json:"NS"`
	BS   []string             `json:"BS"`
}

// item is a DynamoDB item (or key) of the JSON protocol.
type item map[string]attrValue

// itemSize is the item's size in bytes: the UTF-8 lengths of its attribute
// names plus the sizes of their values.
func itemSize(it item) int {
	n := 0
	for name, v := range it {
		n += len(name) + valueSize(v)
	}
	return n
}

// valueSize is an attribute value's size: a string its UTF-8 length, a
// number one byte per two significant digits plus one, a binary its raw
// bytes, a Boolean or null one byte, a list or map 3 bytes plus, for each
// element, its size (and name) and one byte.
func valueSize(v attrValue) int {
	switch {
	case v.S != nil:
		return len(*v.S)
	case v.N != nil:
		return numberSize(*v.N)
	case v.B != nil:
		return binarySize(*v.B)
	case v.BOOL != nil, v.NULL != nil:
		return 1
	case v.L != nil:
		n := 3
		for _, e := range v.L {
			n += valueSize(e) + 1
		}
		return n
	case v.M != nil:
		n := 3
		for name, e := range v.M {
			n += len(name) + valueSize(e) + 1
		}
		return n
	case v.SS != nil:
		n := 0
		for _, s := range v.SS {
			n += len(s)
		}
		return n
	case v.NS != nil:
		n := 0
		for _, s := range v.NS {
			n += numberSize(s)
		}
		return n
	case v.BS != nil:
		n := 0
		for _, s := range v.BS {
			n += binarySize(s)
		}
		return n
	}
	return 0
}

// numberSize is DynamoDB's approximate size of a number: leading and
// trailing zeroes trimmed, one byte per two significant digits, plus one.
func numberSize(s string) int {
	s = strings.TrimLeft(s, "+-")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	s = strings.ReplaceAll(s, ".", "")
	s = strings.Trim(s, "0")
	return (len(s)+1)/2 + 1
}

func binarySize(b64 string) int {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return len(b64) // not base64: DynamoDB would refuse it; count it as sent
	}
	return len(b)
}

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
