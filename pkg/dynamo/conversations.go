package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
}

func (it convItem) conversation() bulkhead.Conversation {
	return bulkhead.Conversation{ID: it.ConversationID, AgentID: it.AgentID, Turns: it.Turns, Tokens: it.Tokens,
		Bytes: it.Bytes, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
}

// GetConversation reads a conversation head. Errors: NotFound.
func (t *TenantStore) GetConversation(ctx context.Context, cid string) (bulkhead.Conversation, error) {
	it, err := getItem[convItem](ctx, t.s, "get conversation", t.pk, convSK(cid), "conversation "+cid+" not found")
	return it.conversation(), err
}

// ListConversations pages through this tenant's conversations, optionally
// only those of one agent.
func (t *TenantStore) ListConversations(ctx context.Context, agentID, cursor string, limit int) (bulkhead.Page[bulkhead.Conversation], error) {
	var filter *filterExpr
	if agentID != "" {
		filter = &filterExpr{expr: "agent_id = :aid", values: map[string]types.AttributeValue{":aid": str(agentID)}}
	}
	return listPage(ctx, t.s, "list conversations", t.pk, prefixConv, cursor, limit, filter, convItem.conversation)
}

// DeleteConversation removes a conversation head and gives its bytes back to
// the tenant's storage allowance, in one transaction. It refuses while an
// execution holds the conversation. The caller then deletes the transcript.
// Errors: NotFound, Conflict.
func (t *TenantStore) DeleteConversation(ctx context.Context, cid string) (bulkhead.Conversation, error) {
	c, err := t.GetConversation(ctx, cid)
	if err != nil {
		return c, err
	}
	now := t.s.now().Unix()
	_, err = t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{
			TableName: aws.String(t.s.table), Key: key(t.pk, convSK(cid)),
			ConditionExpression:       aws.String("turns = :turns AND (attribute_not_exists(busy_exec) OR busy_until < :now)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":turns": num(c.Turns), ":now": num(now)},
		}},
		{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:          aws.String("ADD storage_bytes :neg, storage_committed :neg"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":neg": num(-c.Bytes)},
		}},
	}})
	if err != nil {
		return c, translate("delete conversation", err, bulkhead.Conflict, "conversation is in use by a running execution; retry")
	}
	return c, nil
}
