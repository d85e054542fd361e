package embedded

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/truora/minidyn/server"
)

// Answers of DynamoDB to a Query whose ExclusiveStartKey lies outside its key
// condition. The three cases and their wording are those that dynalite's
// conformance tests (architect/dynalite, validations of query) record from
// DynamoDB: without a sort-key condition, a start key in another partition is
// "outside query boundaries"; with one, a start key whose sort key fails the
// condition "does not match the range key predicate", and one that satisfies it
// in another partition "can return at most one row".
const (
	msgStartKeyOutside   = "The provided starting key is outside query boundaries based on provided conditions"
	msgStartKeyPredicate = "The provided starting key does not match the range key predicate"
	msgStartKeyOneRow    = "The query can return at most one row and cannot be restarted"
)

// keySchema names the partition (hash) and sort (range) key attributes of a
// table or index; rng is "" when there is no sort key.
type keySchema struct {
	hash, rng string
}

// tableSchema is what the checks of rules.go need to know about a table: its
// key, its indexes' keys, and the types of the key attributes.
type tableSchema struct {
	key       keySchema
	attrTypes map[string]ddbtypes.ScalarAttributeType
	indexes   map[string]keySchema
}

// parseCreateTable reads the key schema out of a CreateTable request body; nil
// if it cannot (minidyn accepted the body, so that does not happen in practice,
// and the checks that need the schema are then skipped).
func parseCreateTable(body []byte) *tableSchema {
	var in server.CreateTableInput
	if json.Unmarshal(body, &in) != nil {
		return nil
	}
	s := &tableSchema{
		key:       keyOf(in.KeySchema),
		attrTypes: map[string]ddbtypes.ScalarAttributeType{},
		indexes:   map[string]keySchema{},
	}
	for _, a := range in.AttributeDefinitions {
		if a.AttributeName != nil {
			s.attrTypes[*a.AttributeName] = a.AttributeType
		}
	}
	for _, g := range in.GlobalSecondaryIndexes {
		if g.IndexName != nil {
			s.indexes[*g.IndexName] = keyOf(g.KeySchema)
		}
	}
	for _, l := range in.LocalSecondaryIndexes {
		if l.IndexName != nil {
			s.indexes[*l.IndexName] = keyOf(l.KeySchema)
		}
	}
	if s.key.hash == "" {
		return nil
	}
	return s
}

// applyUpdateTable records the indexes that a successful UpdateTable created or
// deleted. The caller holds mu for writing.
func (s *tableSchema) applyUpdateTable(body []byte) {
	var in server.UpdateTableInput
	if s == nil || json.Unmarshal(body, &in) != nil {
		return
	}
	for _, a := range in.AttributeDefinitions {
		if a.AttributeName != nil {
			s.attrTypes[*a.AttributeName] = a.AttributeType
		}
	}
	for _, u := range in.GlobalSecondaryIndexUpdates {
		switch {
		case u.Create != nil && u.Create.IndexName != nil:
			s.indexes[*u.Create.IndexName] = keyOf(u.Create.KeySchema)
		case u.Delete != nil && u.Delete.IndexName != nil:
			delete(s.indexes, *u.Delete.IndexName)
		}
	}
}

func keyOf(elems []ddbtypes.KeySchemaElement) keySchema {
	var k keySchema
	for _, e := range elems {
		if e.AttributeName == nil {
			continue
		}
		switch e.KeyType {
		case ddbtypes.KeyTypeHash:
			k.hash = *e.AttributeName
		case ddbtypes.KeyTypeRange:
			k.rng = *e.AttributeName
		}
	}
	return k
}

// keyCond is one condition of a key condition: attr op vals, where op is one of
// = < <= > >= between begins_with.
type keyCond struct {
	attr string
	op   string
	vals []*server.AttributeValue
}

// startKeyOutside returns DynamoDB's message for a Query whose ExclusiveStartKey
// lies outside its key condition, or "" when it lies inside, or when the request
// is one this check does not understand (an unknown table or index, a key
// condition it cannot parse, a start key without the key attributes): minidyn
// then answers as it does.
func startKeyOutside(schema *tableSchema, in *server.QueryInput) string {
	if schema == nil || len(in.ExclusiveStartKey) == 0 {
		return ""
	}
	key := schema.key
	if in.IndexName != nil {
		k, ok := schema.indexes[*in.IndexName]
		if !ok {
			return ""
		}
		key = k
	}
	conds, ok := queryKeyConditions(in)
	if !ok {
		return ""
	}
	var hashCond, sortCond *keyCond
	for i := range conds {
		switch c := &conds[i]; {
		case c.attr == key.hash && c.op == "=":
			hashCond = c
		case key.rng != "" && c.attr == key.rng:
			sortCond = c
		default:
			return ""
		}
	}
	startHash := in.ExclusiveStartKey[key.hash]
	if hashCond == nil || startHash == nil {
		return ""
	}
	sameHash, ok := compareAV(startHash, hashCond.vals[0])
	if !ok {
		return ""
	}
	if sortCond == nil {
		if sameHash != 0 {
			return msgStartKeyOutside
		}
		return ""
	}
	startSort := in.ExclusiveStartKey[key.rng]
	if startSort == nil {
		return ""
	}
	inRange, ok := sortCond.holds(startSort)
	if !ok {
		return ""
	}
	if !inRange {
		return msgStartKeyPredicate
	}
	if sameHash != 0 {
		return msgStartKeyOneRow
	}
	return ""
}

// holds reports whether v satisfies the condition; ok is false when the types
// cannot be compared (minidyn then decides).
func (c *keyCond) holds(v *server.AttributeValue) (holds, ok bool) {
	switch c.op {
	case "begins_with":
		switch {
		case v.S != nil && c.vals[0].S != nil:
			return strings.HasPrefix(*v.S, *c.vals[0].S), true
		case v.B != nil && c.vals[0].B != nil:
			return bytes.HasPrefix(v.B, c.vals[0].B), true
		}
		return false, false
	case "between":
		lo, ok1 := compareAV(v, c.vals[0])
		hi, ok2 := compareAV(v, c.vals[1])
		return lo >= 0 && hi <= 0, ok1 && ok2
	}
	n, ok := compareAV(v, c.vals[0])
	if !ok {
		return false, false
	}
	switch c.op {
	case "=":
		return n == 0, true
	case "<":
		return n < 0, true
	case "<=":
		return n <= 0, true
	case ">":
		return n > 0, true
	case ">=":
		return n >= 0, true
	}
	return false, false
}

// compareAV orders two scalar values of the same type as DynamoDB orders keys:
// strings and binaries by their bytes, numbers by value.
func compareAV(a, b *server.AttributeValue) (int, bool) {
	switch {
	case a == nil || b == nil:
		return 0, false
	case a.S != nil && b.S != nil:
		return strings.Compare(*a.S, *b.S), true
	case a.B != nil && b.B != nil:
		return bytes.Compare(a.B, b.B), true
	case a.N != nil && b.N != nil:
		x, okx := new(big.Float).SetPrec(256).SetString(*a.N)
		y, oky := new(big.Float).SetPrec(256).SetString(*b.N)
		if !okx || !oky {
			return 0, false
		}
		return x.Cmp(y), true
	}
	return 0, false
}

// queryKeyConditions returns the conditions of a Query's key condition, from
// KeyConditionExpression or the legacy KeyConditions, with names and values
// substituted; ok is false when there is neither or it cannot be parsed.
func queryKeyConditions(in *server.QueryInput) ([]keyCond, bool) {
	if in.KeyConditionExpression != nil {
		return parseKeyCondition(*in.KeyConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	}
	if len(in.KeyConditions) == 0 {
		return nil, false
	}
	ops := map[ddbtypes.ComparisonOperator]string{
		ddbtypes.ComparisonOperatorEq: "=", ddbtypes.ComparisonOperatorLt: "<", ddbtypes.ComparisonOperatorLe: "<=",
		ddbtypes.ComparisonOperatorGt: ">", ddbtypes.ComparisonOperatorGe: ">=",
		ddbtypes.ComparisonOperatorBeginsWith: "begins_with", ddbtypes.ComparisonOperatorBetween: "between",
	}
	var conds []keyCond
	for attr, c := range in.KeyConditions {
		op, ok := ops[c.ComparisonOperator]
		if !ok || len(c.AttributeValueList) != arity(op) {
			return nil, false
		}
		conds = append(conds, keyCond{attr: attr, op: op, vals: c.AttributeValueList})
	}
	return conds, true
}

// arity is the number of values an operator takes.
func arity(op string) int {
	if op == "between" {
		return 2
	}
	return 1
}

// parseKeyCondition parses the documented key-condition grammar:
//
//	cond AND cond | cond | ( ... )
//	cond: operand comparator operand | operand BETWEEN operand AND operand
//	      | begins_with ( operand , operand )
//
// where an operand is an attribute name, a #name or a :value, and a comparator is
// one of = < <= > >=. Keywords are case-insensitive, as in DynamoDB.
func parseKeyCondition(expr string, names map[string]string, values map[string]*server.AttributeValue) ([]keyCond, bool) {
	p := &kcParser{toks: tokenize(expr), names: names, values: values}
	conds, ok := p.conjunction()
	if !ok || p.pos != len(p.toks) {
		return nil, false
	}
	return conds, true
}

// kcParser is a recursive-descent parser over the tokens of a key condition.
type kcParser struct {
	toks   []string
	pos    int
	names  map[string]string
	values map[string]*server.AttributeValue
}

func (p *kcParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *kcParser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *kcParser) conjunction() ([]keyCond, bool) {
	var conds []keyCond
	for {
		c, ok := p.condition()
		if !ok {
			return nil, false
		}
		conds = append(conds, c...)
		if !strings.EqualFold(p.peek(), "AND") {
			return conds, true
		}
		p.next()
	}
}

func (p *kcParser) condition() ([]keyCond, bool) {
	switch t := p.peek(); {
	case t == "(":
		p.next()
		conds, ok := p.conjunction()
		if !ok || p.next() != ")" {
			return nil, false
		}
		return conds, true
	case t == "begins_with":
		p.next()
		if p.next() != "(" {
			return nil, false
		}
		attr, ok := p.attribute()
		if !ok || p.next() != "," {
			return nil, false
		}
		v, ok := p.value()
		if !ok || p.next() != ")" {
			return nil, false
		}
		return []keyCond{{attr: attr, op: "begins_with", vals: []*server.AttributeValue{v}}}, true
	}
	// operand comparator operand, either way round, or operand BETWEEN a AND b.
	left := p.next()
	op := p.next()
	if strings.EqualFold(op, "BETWEEN") {
		attr, ok := p.resolveName(left)
		if !ok {
			return nil, false
		}
		lo, ok1 := p.value()
		and := p.next()
		hi, ok2 := p.value()
		if !ok1 || !ok2 || !strings.EqualFold(and, "AND") {
			return nil, false
		}
		return []keyCond{{attr: attr, op: "between", vals: []*server.AttributeValue{lo, hi}}}, true
	}
	if !isComparator(op) {
		return nil, false
	}
	right := p.next()
	if attr, ok := p.resolveName(left); ok {
		v, ok := p.values[right]
		if !ok || !strings.HasPrefix(right, ":") {
			return nil, false
		}
		return []keyCond{{attr: attr, op: op, vals: []*server.AttributeValue{v}}}, true
	}
	// :value op name: the same condition with the comparator turned round.
	v, ok := p.values[left]
	attr, okName := p.resolveName(right)
	if !ok || !okName {
		return nil, false
	}
	flip := map[string]string{"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
	return []keyCond{{attr: attr, op: flip[op], vals: []*server.AttributeValue{v}}}, true
}

func (p *kcParser) attribute() (string, bool) {
	return p.resolveName(p.next())
}

func (p *kcParser) value() (*server.AttributeValue, bool) {
	t := p.next()
	v, ok := p.values[t]
	return v, ok && strings.HasPrefix(t, ":")
}

// resolveName returns the attribute a name token stands for: a #name through
// ExpressionAttributeNames, a plain name as itself; values and punctuation are
// not names.
func (p *kcParser) resolveName(t string) (string, bool) {
	switch {
	case t == "" || strings.HasPrefix(t, ":") || strings.ContainsAny(t[:1], "()=<>,"):
		return "", false
	case strings.HasPrefix(t, "#"):
		n, ok := p.names[t]
		return n, ok
	}
	return t, true
}

func isComparator(op string) bool {
	switch op {
	case "=", "<", "<=", ">", ">=":
		return true
	}
	return false
}

// tokenize splits a key condition into names, placeholders, keywords and the
// punctuation ( ) , = < <= > >= <>.
func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == ',' || c == '=':
			toks = append(toks, string(c))
			i++
		case c == '<' || c == '>':
			if i+1 < len(s) && (s[i+1] == '=' || (c == '<' && s[i+1] == '>')) {
				toks = append(toks, s[i:i+2])
				i += 2
			} else {
				toks = append(toks, string(c))
				i++
			}
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r(),=<>", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}
