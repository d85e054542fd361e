package dynamo

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

type agentItem struct {
	PK           string                `dynamodbav:"PK"`
	SK           string                `dynamodbav:"SK"`
	AgentID      string                `dynamodbav:"agent_id"`
	Name         string                `dynamodbav:"name"`
	Status       string                `dynamodbav:"status"`
	SystemPrompt string                `dynamodbav:"system_prompt"`
	Tools        []string              `dynamodbav:"tools,omitempty"` // an empty list does not survive the embedded server
	Model        string                `dynamodbav:"model"`
	Fallbacks    []string              `dynamodbav:"fallback_models,omitempty"` // agents stored before fallbacks have none
	Limits       *bulkhead.AgentLimits `dynamodbav:"limits,omitempty"`
	LogContent   bool                  `dynamodbav:"log_content,omitempty"`
	Version      int64                 `dynamodbav:"version"`
	CreatedAt    time.Time             `dynamodbav:"created_at"`
	UpdatedAt    time.Time             `dynamodbav:"updated_at"`
}

func newAgentItem(pk string, a bulkhead.Agent) agentItem {
	// Empty lists and maps are never stored: the embedded server answers an
	// empty collection with another attribute's value.
	var tools []string
	for _, t := range a.Tools {
		tools = append(tools, string(t))
	}
	it := agentItem{PK: pk, SK: agentSK(a.ID), AgentID: a.ID, Name: a.Name, Status: string(a.Status),
		SystemPrompt: a.SystemPrompt, Tools: tools, Model: a.Model, Fallbacks: slices.Clone(a.FallbackModels), LogContent: a.LogContent, Version: a.Version, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if a.Limits != (bulkhead.AgentLimits{}) {
		l := a.Limits
		it.Limits = &l
	}
	return it
}

func (it agentItem) agent() bulkhead.Agent {
	tools := make([]json.RawMessage, len(it.Tools))
	for i, t := range it.Tools {
		tools[i] = json.RawMessage(t)
	}
	a := bulkhead.Agent{ID: it.AgentID, Name: it.Name, Status: bulkhead.AgentStatus(it.Status), SystemPrompt: it.SystemPrompt,
		Tools: tools, Model: it.Model, FallbackModels: slices.Clone(it.Fallbacks), LogContent: it.LogContent, Version: it.Version, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
	if it.Limits != nil {
		a.Limits = *it.Limits
	}
	return a
}

// CreateAgent stores a new agent, and with idem its idempotent result in the
// same transaction. Errors: Conflict.
func (t *TenantStore) CreateAgent(ctx context.Context, a bulkhead.Agent, idem *IdemCompletion) error {
	av, err := attributevalue.MarshalMap(newAgentItem(t.pk, a))
	if err != nil {
		return err
	}
	put := &types.Put{TableName: aws.String(t.s.table), Item: av, ConditionExpression: aws.String("attribute_not_exists(PK)")}
	return t.transact(ctx, "create agent", "agent already exists", auditOp{action: bulkhead.ActionAgentCreated, target: a.ID}, idem,
		types.TransactWriteItem{Put: put})
}

// GetAgent reads one of this tenant's agents. Errors: NotFound.
func (t *TenantStore) GetAgent(ctx context.Context, aid string) (bulkhead.Agent, error) {
	it, err := getItem[agentItem](ctx, t.s, "get agent", t.pk, agentSK(aid), "agent "+aid+" not found")
	return it.agent(), err
}

// ListAgents pages through this tenant's agents.
func (t *TenantStore) ListAgents(ctx context.Context, cursor string, limit int) (bulkhead.Page[bulkhead.Agent], error) {
	return listPage(ctx, t.s, "list agents", t.pk, prefixAgent, cursor, limit, nil, agentItem.agent)
}

// PutAgent replaces an agent if it is still at version prev (optimistic
// concurrency for PATCH). Errors: NotFound when it is gone, Conflict when it
// changed in between.
func (t *TenantStore) PutAgent(ctx context.Context, a bulkhead.Agent, prev int64) error {
	av, err := attributevalue.MarshalMap(newAgentItem(t.pk, a))
	if err != nil {
		return err
	}
	err = t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionAgentUpdated, target: a.ID},
		types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(t.s.table), Item: av,
			ConditionExpression:       aws.String("version = :prev"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":prev": num(prev)},
		}})
	return translate("update agent", err, bulkhead.Conflict, "agent was changed or deleted concurrently; retry")
}

// DeleteAgent removes one of this tenant's agents. Its conversations stay
// readable. Errors: NotFound.
func (t *TenantStore) DeleteAgent(ctx context.Context, aid string) error {
	err := t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionAgentDeleted, target: aid},
		types.TransactWriteItem{Delete: &types.Delete{
			TableName: aws.String(t.s.table), Key: key(t.pk, agentSK(aid)),
			ConditionExpression: aws.String("attribute_exists(PK)"),
		}})
	return translate("delete agent", err, bulkhead.NotFound, "agent "+aid+" not found")
}
