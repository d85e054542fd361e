package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

type convItem struct {
	PK             string    `dynamodbav:"PK"`
	SK             string    `dynamodbav:"SK"`
	ConversationID string    `dynamodbav:"conversation_id"`
	AgentID        string    `dynamodbav:"agent_id"`
	Turns          int64     `dynamodbav:"turns"`
	Tokens         int64     `dynamodbav:"tokens"`
	Bytes          int64     `dynamodbav:"bytes"`
	CreatedAt      time.Time `dynamodbav:"created_at"`
	UpdatedAt      time.Time `dynamodbav:"updated_at"`
	// BusyExec and BusyUntil are the claim of the execution writing the next
	// turn: one turn at a time per conversation, and a crashed execution's
	// claim lapses by itself. Settling releases the claim by setting
	// BusyUntil to 0 (a lapsed lease), which frees it just as well as removing
	// the attributes would.
	BusyExec  string `dynamodbav:"busy_exec,omitempty"`
	BusyUntil int64  `dynamodbav:"busy_until,omitempty"`
	// Deleting is when a deletion started (Unix seconds): the conversation
	// is gone for the tenant, but its head, and so its bytes in the storage
	// count, stay until its transcript objects are removed.
	Deleting int64 `dynamodbav:"deleting,omitempty"`
	// FirstTurn holds the first turn's messages when they are small enough
	// (HeadTurnBytes) to share the head's 1 KB write unit: the settlement
	// that starts a conversation then writes one item fewer.
	FirstTurn string `dynamodbav:"first_turn,omitempty"`
}

func (it convItem) conversation() bulkhead.Conversation {
	c := bulkhead.Conversation{ID: it.ConversationID, AgentID: it.AgentID, Turns: it.Turns, Tokens: it.Tokens,
		Bytes: it.Bytes, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
	if it.FirstTurn != "" {
		c.FirstTurn = []byte(it.FirstTurn)
	}
	return c
}

// deletingClaim is the claim a deletion holds on a conversation head: it
// never lapses, so admission (which needs no live claim) refuses to continue
// a conversation being deleted, and a late settlement (which needs its own
// claim) cannot add a turn to it.
const deletingClaim = "deleting"

// newConversationWrites are the items a settlement writes when an execution
// starts a conversation: the head, and its entry in the agent's index.
func (t *TenantStore) newConversationWrites(head convItem) ([]types.TransactWriteItem, error) {
	av, err := attributevalue.MarshalMap(head)
	if err != nil {
		return nil, fmt.Errorf("encode conversation %s: %w", head.ConversationID, err)
	}
	return []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(t.s.table), Item: av, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
		{Put: &types.Put{TableName: aws.String(t.s.table), Item: key(t.pk, agentConvSK(head.AgentID, head.ConversationID))}},
	}, nil
}

// GetConversation reads a conversation head; one being deleted is not
// found. Errors: NotFound.
func (t *TenantStore) GetConversation(ctx context.Context, cid string) (bulkhead.Conversation, error) {
	it, err := getItem[convItem](ctx, t.s, "get conversation", t.pk, convSK(cid), "conversation "+cid+" not found")
	if err == nil && it.Deleting != 0 {
		return bulkhead.Conversation{}, bulkhead.Errorf(bulkhead.NotFound, "conversation %s not found", cid)
	}
	return it.conversation(), err
}

// ListConversations pages through this tenant's conversations, optionally
// only those of one agent, in conversation id order. Conversations being
// deleted are left out. Errors: Invalid (cursor), Unavailable.
func (t *TenantStore) ListConversations(ctx context.Context, agentID, cursor string, limit int) (bulkhead.Page[bulkhead.Conversation], error) {
	if agentID != "" {
		return t.listAgentConversations(ctx, agentID, cursor, limit)
	}
	// Only heads being deleted are filtered out, and there are few of those
	// at any time, so a page still costs about what it returns.
	live := &filterExpr{expr: "attribute_not_exists(deleting)"}
	return listPage(ctx, t.s, "list conversations", t.pk, prefixConv, cursor, limit, live, convItem.conversation)
}

// listAgentConversations reads one page of the agent's index items, then
// their heads in one batch read: the cost is that of the page, however many
// conversations other agents have. A head deleted since its index item was
// read (or being deleted) is left out of the page; the cursor is the index
// item where the page ended, so paging stays exact.
func (t *TenantStore) listAgentConversations(ctx context.Context, aid, cursor string, limit int) (bulkhead.Page[bulkhead.Conversation], error) {
	const op = "list conversations"
	prefix := agentConvPrefix(aid)
	index, next, err := t.s.queryPage(ctx, op, t.pk, prefix, cursor, limit, nil)
	if err != nil {
		return bulkhead.Page[bulkhead.Conversation]{}, err
	}
	page := bulkhead.Page[bulkhead.Conversation]{Items: []bulkhead.Conversation{}, NextCursor: next}
	if len(index) == 0 {
		return page, nil
	}
	ids := make([]string, 0, len(index))
	keys := make([]map[string]types.AttributeValue, 0, len(index))
	for _, it := range index {
		sk, _ := it[attrSK].(*types.AttributeValueMemberS)
		if sk == nil {
			continue
		}
		cid := idFromSK(sk.Value, prefix)
		ids = append(ids, cid)
		keys = append(keys, key(t.pk, convSK(cid)))
	}
	heads, err := t.batchGet(ctx, op, keys)
	if err != nil {
		return page, err
	}
	for _, cid := range ids {
		av := heads[convSK(cid)]
		if av == nil {
			continue
		}
		var it convItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return page, fmt.Errorf("%s: decode %s: %w", op, cid, err)
		}
		if it.Deleting != 0 || it.AgentID != aid {
			continue
		}
		page.Items = append(page.Items, it.conversation())
	}
	return page, nil
}

// batchGet reads items of this tenant's partition (at most 100 keys) with
// one strongly consistent BatchGetItem, plus one more per round of
// unprocessed keys; it returns them by sort key.
func (t *TenantStore) batchGet(ctx context.Context, op string, keys []map[string]types.AttributeValue) (map[string]map[string]types.AttributeValue, error) {
	found, err := t.s.batchGet(ctx, op, keys)
	if err != nil {
		return nil, err
	}
	items := make(map[string]map[string]types.AttributeValue, len(found))
	for _, it := range found {
		if sk, ok := it[attrSK].(*types.AttributeValueMemberS); ok {
			items[sk.Value] = it
		}
	}
	return items, nil
}

// batchGet reads items (at most 100 keys, of any partitions the store's
// credentials reach) with one strongly consistent BatchGetItem, plus one
// more per round of unprocessed keys; it returns the items found, in no
// particular order.
func (s *Store) batchGet(ctx context.Context, op string, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	for len(req) > 0 {
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, translate(op, err, bulkhead.Internal, "")
		}
		items = append(items, out.Responses[s.table]...)
		req = out.UnprocessedKeys
	}
	return items, nil
}

// StartDeleteConversation is the first step of deleting a conversation: it
// marks the head as being deleted, which hides the conversation (get, list
// and execute answer 404), and claims it on the counter item for good, which
// stops any execution from being admitted to it, while its bytes stay
// counted; one transaction. Marking again (a retried deletion) is allowed.
// It refuses while an execution holds the conversation. The caller then
// removes the transcript and calls FinishDeleteConversation. Errors:
// NotFound, Conflict, Unavailable.
func (t *TenantStore) StartDeleteConversation(ctx context.Context, cid string) (bulkhead.Conversation, error) {
	const op = "delete conversation"
	now := t.s.now().Unix()
	_, err := t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, convSK(cid)),
			UpdateExpression:          aws.String("SET deleting = if_not_exists(deleting, :now)"),
			ConditionExpression:       aws.String("attribute_exists(PK)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now)},
		}},
		{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:         aws.String("SET #conv = :claim"),
			ConditionExpression:      aws.String("attribute_not_exists(#conv) OR #conv.#until < :now OR #conv.#exec = :del"),
			ExpressionAttributeNames: map[string]string{"#conv": claimAttr(cid), "#until": claimUntil, "#exec": claimExec},
			ExpressionAttributeValues: map[string]types.AttributeValue{":claim": claimValue(deletingClaim, farFuture.Unix()),
				":now": num(now), ":del": str(deletingClaim)},
		}},
	}})
	switch reasons := cancelReasons(err); {
	case fails(reasons, 0):
		return bulkhead.Conversation{}, bulkhead.Errorf(bulkhead.NotFound, "conversation %s not found", cid)
	case fails(reasons, 1):
		return bulkhead.Conversation{}, bulkhead.Errorf(bulkhead.Conflict, "conversation is in use by a running execution; retry")
	case err != nil:
		return bulkhead.Conversation{}, translate(op, err, bulkhead.Internal, "")
	}
	it, err := getItem[convItem](ctx, t.s, op, t.pk, convSK(cid), "conversation "+cid+" not found")
	return it.conversation(), err
}

// FinishDeleteConversation removes a head marked by StartDeleteConversation,
// its index item and the deletion's claim, and gives its bytes back to the
// tenant's storage allowance, in one transaction. The head's bytes cannot have changed since
// it was marked (no execution can claim it). A head already removed by a
// concurrent deletion is not an error: its bytes were given back once.
// Errors: Unavailable.
func (t *TenantStore) FinishDeleteConversation(ctx context.Context, c bulkhead.Conversation) error {
	err := t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionConversationDelete, target: c.ID,
		changes: map[string]bulkhead.Change{"agent_id": {Before: c.AgentID}, "bytes": {Before: c.Bytes}}},
		types.TransactWriteItem{Delete: &types.Delete{
			TableName: aws.String(t.s.table), Key: key(t.pk, convSK(c.ID)),
			ConditionExpression: aws.String("attribute_exists(deleting)"),
		}},
		types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(t.s.table), Key: key(t.pk, agentConvSK(c.AgentID, c.ID))}},
		types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:          aws.String("REMOVE #conv ADD storage_bytes :neg, storage_committed :neg"),
			ExpressionAttributeNames:  map[string]string{"#conv": claimAttr(c.ID)},
			ExpressionAttributeValues: map[string]types.AttributeValue{":neg": num(-c.Bytes)},
		}})
	if fails(cancelReasons(err), 0) {
		return nil
	}
	return translate("delete conversation", err, bulkhead.Internal, "")
}
