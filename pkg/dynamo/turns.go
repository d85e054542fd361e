package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// InlineTurnBytes is the largest turn (its messages as JSON) kept in
// DynamoDB, written in the settlement transaction with the conversation head.
// A larger turn is an S3 object written before the settlement. The line is
// where the two cost about the same: a transactional write costs 2 units per
// KB ($1.25 per million per KB) and each of the ten later context reads a
// quarter unit per KB, against one S3 PUT ($5 per million) and ten GETs ($4).
const InlineTurnBytes = 4 << 10

// HeadTurnBytes is the largest first turn kept in the conversation head: the
// head's other attributes take about 250 bytes, and the head with its first
// turn stays within one 1 KB write unit however long the conversation gets.
const HeadTurnBytes = 640

// prefixTurn keys a conversation's inline turns: one item per turn, in turn
// order, so a context window is one Query.
const prefixTurn = "TURN#"

// turnDigits is wide enough for any turn number a transcript can reach.
const turnDigits = 8

func turnPrefix(cid string) string { return prefixTurn + cid + "#" }

func turnSK(cid string, turn int64) string {
	return fmt.Sprintf("%s%0*d", turnPrefix(cid), turnDigits, turn)
}

// attrTurnMessages holds an inline turn's messages, as the JSON array the
// transcript objects hold.
const attrTurnMessages = "messages"

// turnWrite is the settlement's write of an inline turn. The conversation
// head's condition (its claim, in the same transaction) is what makes the
// turn number this execution's alone.
func (t *TenantStore) turnWrite(cid string, turn int64, messages []byte) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(t.s.table), Item: map[string]types.AttributeValue{
		attrPK: str(t.pk), attrSK: str(turnSK(cid, turn)), attrTurnMessages: str(string(messages)),
	}}}
}

// TurnSource is where a conversation's inline turns are read: its head (the
// first turn, when small) and its TURN# items.
type TurnSource struct {
	t    *TenantStore
	conv bulkhead.Conversation
}

// TurnSource returns the source of c's inline turns; c is the head as read.
func (t *TenantStore) TurnSource(c bulkhead.Conversation) *TurnSource {
	return &TurnSource{t: t, conv: c}
}

// Turns returns the inline turns first..last of the conversation that
// exist, by turn number, as JSON message arrays: the first from the head
// when it holds it, the others with one strongly consistent Query (none
// when the head has them all). A turn it does not return is in an object.
func (s *TurnSource) Turns(ctx context.Context, cid string, first, last int64) (map[int64][]byte, error) {
	if cid != s.conv.ID {
		return nil, fmt.Errorf("read turns: source of conversation %s asked for %s", s.conv.ID, cid)
	}
	from := first
	if first <= 1 && s.conv.FirstTurn != nil {
		from = 2
	}
	out, err := s.t.turns(ctx, cid, from, last)
	if err == nil && from > first {
		out[1] = s.conv.FirstTurn
	}
	return out, err
}

// turns returns the TURN# items first..last of a conversation that exist:
// one strongly consistent Query (more only past 1 MB).
func (t *TenantStore) turns(ctx context.Context, cid string, first, last int64) (map[int64][]byte, error) {
	const op = "read turns"
	out := map[int64][]byte{}
	if first > last {
		return out, nil
	}
	in := &dynamodb.QueryInput{
		TableName:                aws.String(t.s.table),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(t.pk),
			":lo": str(turnSK(cid, first)), ":hi": str(turnSK(cid, last))},
		ConsistentRead: aws.Bool(true),
	}
	prefix := turnPrefix(cid)
	for {
		page, err := t.s.db.Query(ctx, in)
		if err != nil {
			return nil, translate(op, err, bulkhead.Internal, "")
		}
		for _, it := range page.Items {
			sk, _ := it[attrSK].(*types.AttributeValueMemberS)
			msgs, _ := it[attrTurnMessages].(*types.AttributeValueMemberS)
			if sk == nil || msgs == nil {
				continue
			}
			var n int64
			if _, err := fmt.Sscanf(idFromSK(sk.Value, prefix), "%d", &n); err != nil {
				return nil, fmt.Errorf("%s: unreadable turn key %q", op, sk.Value)
			}
			out[n] = []byte(msgs.Value)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// DeleteTurns removes every inline turn of a conversation (one being
// deleted), in batches of 25.
func (t *TenantStore) DeleteTurns(ctx context.Context, cid string) error {
	const op = "delete turns"
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(t.s.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(t.pk), ":prefix": str(turnPrefix(cid))},
		ProjectionExpression:      aws.String("#pk, #sk"),
		ConsistentRead:            aws.Bool(true),
	}
	for {
		page, err := t.s.db.Query(ctx, in)
		if err != nil {
			return translate(op, err, bulkhead.Internal, "")
		}
		for i := 0; i < len(page.Items); i += 25 {
			var reqs []types.WriteRequest
			for _, it := range page.Items[i:min(i+25, len(page.Items))] {
				reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: it}})
			}
			if err := t.s.batchWrite(ctx, op, reqs); err != nil {
				return err
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// batchWrite writes one BatchWriteItem (at most 25 requests), again for
// whatever DynamoDB leaves unprocessed, with a short backoff.
func (s *Store) batchWrite(ctx context.Context, op string, reqs []types.WriteRequest) error {
	pending := map[string][]types.WriteRequest{s.table: reqs}
	for backoff := 10 * time.Millisecond; len(pending[s.table]) > 0; backoff = min(2*backoff, time.Second) {
		out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return translate(op, err, bulkhead.Internal, "")
		}
		if pending = out.UnprocessedItems; len(pending[s.table]) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return translate(op, ctx.Err(), bulkhead.Internal, "")
		case <-time.After(backoff):
		}
	}
	return nil
}
