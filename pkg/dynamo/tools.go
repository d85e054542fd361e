package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// A tool is stored under its name (TOOL#<name>), which is what agents and
// the model use, so an execution reads all its agent's tools with one
// BatchGetItem; a small pointer item (TOOLID#<id>) finds it by id for the
// API. Names never change, so the pointer never moves.
type toolItem struct {
	PK          string                  `dynamodbav:"PK"`
	SK          string                  `dynamodbav:"SK"`
	ToolID      string                  `dynamodbav:"tool_id"`
	Type        string                  `dynamodbav:"type"`
	Name        string                  `dynamodbav:"name"`
	Description string                  `dynamodbav:"description,omitempty"`
	InputSchema string                  `dynamodbav:"input_schema,omitempty"`
	URL         string                  `dynamodbav:"url"`
	TimeoutMS   int64                   `dynamodbav:"timeout_ms"`
	Secrets     []bulkhead.SealedSecret `dynamodbav:"secrets,omitempty"`
	Headers     []byte                  `dynamodbav:"headers,omitempty"`
	HeaderNames []string                `dynamodbav:"header_names,omitempty"`
	Version     int64                   `dynamodbav:"version"`
	CreatedAt   time.Time               `dynamodbav:"created_at"`
	UpdatedAt   time.Time               `dynamodbav:"updated_at"`
}

type toolIDItem struct {
	PK   string `dynamodbav:"PK"`
	SK   string `dynamodbav:"SK"`
	Name string `dynamodbav:"name"`
}

func newToolItem(pk string, t bulkhead.Tool) toolItem {
	return toolItem{PK: pk, SK: toolSK(t.Name), ToolID: t.ID, Type: string(t.Type), Name: t.Name, Description: t.Description,
		InputSchema: string(t.InputSchema), URL: t.URL, TimeoutMS: t.Timeout.Milliseconds(), Secrets: slices.Clone(t.Secrets),
		Headers: t.Headers, HeaderNames: slices.Clone(t.HeaderNames), Version: t.Version, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

func (it toolItem) tool() bulkhead.Tool {
	t := bulkhead.Tool{ID: it.ToolID, Type: bulkhead.ToolType(it.Type), Name: it.Name, Description: it.Description,
		URL: it.URL, Timeout: time.Duration(it.TimeoutMS) * time.Millisecond, Secrets: it.Secrets, Headers: it.Headers,
		HeaderNames: it.HeaderNames, Version: it.Version, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
	if it.InputSchema != "" {
		t.InputSchema = json.RawMessage(it.InputSchema)
	}
	return t
}

// CreateTool stores a new tool and its id pointer, and with idem its
// idempotent result, in one transaction. Errors: Conflict (the name is taken).
func (t *TenantStore) CreateTool(ctx context.Context, tool bulkhead.Tool, idem *IdemCompletion) error {
	av, err := attributevalue.MarshalMap(newToolItem(t.pk, tool))
	if err != nil {
		return err
	}
	ptr, err := attributevalue.MarshalMap(toolIDItem{PK: t.pk, SK: toolIDSK(tool.ID), Name: tool.Name})
	if err != nil {
		return err
	}
	notExists := aws.String("attribute_not_exists(PK)")
	return t.transact(ctx, "create tool", fmt.Sprintf("a tool named %q already exists", tool.Name),
		auditOp{action: bulkhead.ActionToolCreated, target: tool.ID}, idem,
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(t.s.table), Item: av, ConditionExpression: notExists}},
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(t.s.table), Item: ptr, ConditionExpression: notExists}})
}

// GetTool reads one of this tenant's tools by id. Errors: NotFound.
func (t *TenantStore) GetTool(ctx context.Context, id string) (bulkhead.Tool, error) {
	notFound := "tool " + id + " not found"
	ptr, err := getItem[toolIDItem](ctx, t.s, "get tool", t.pk, toolIDSK(id), notFound)
	if err != nil {
		return bulkhead.Tool{}, err
	}
	it, err := getItem[toolItem](ctx, t.s, "get tool", t.pk, toolSK(ptr.Name), notFound)
	if err == nil && it.ToolID != id {
		return bulkhead.Tool{}, bulkhead.Errorf(bulkhead.NotFound, "%s", notFound)
	}
	return it.tool(), err
}

// ToolsByName reads the tenant's tools with these names (at most
// bulkhead.MaxTools) with one BatchGetItem; names without a tool are absent.
func (t *TenantStore) ToolsByName(ctx context.Context, names []string) (map[string]bulkhead.Tool, error) {
	out := map[string]bulkhead.Tool{}
	if len(names) == 0 {
		return out, nil
	}
	if len(names) > 100 {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "at most %d tools", bulkhead.MaxTools)
	}
	seen := map[string]bool{}
	var keys []map[string]types.AttributeValue
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			keys = append(keys, key(t.pk, toolSK(n)))
		}
	}
	items, err := t.batchGet(ctx, "read tools", keys)
	if err != nil {
		return nil, err
	}
	for _, item := range items {
		var it toolItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return nil, fmt.Errorf("read tools: decode: %w", err)
		}
		out[it.Name] = it.tool()
	}
	return out, nil
}

// ListTools pages through this tenant's tools, by name.
func (t *TenantStore) ListTools(ctx context.Context, cursor string, limit int) (bulkhead.Page[bulkhead.Tool], error) {
	return listPage(ctx, t.s, "list tools", t.pk, prefixTool, cursor, limit, nil, toolItem.tool)
}

// PutTool replaces a tool if it is still at version prev. Errors: Conflict
// when it changed or went in between.
func (t *TenantStore) PutTool(ctx context.Context, tool bulkhead.Tool, prev int64) error {
	av, err := attributevalue.MarshalMap(newToolItem(t.pk, tool))
	if err != nil {
		return err
	}
	err = t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionToolUpdated, target: tool.ID},
		types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(t.s.table), Item: av,
			ConditionExpression:       aws.String("version = :prev AND tool_id = :id"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":prev": num(prev), ":id": str(tool.ID)},
		}})
	return translate("update tool", err, bulkhead.Conflict, "tool was changed or deleted concurrently; retry")
}

// DeleteTool removes a tool and its pointer in one transaction. Agents that
// name it are not changed: an execution no longer offers it to the model.
// Errors: NotFound.
func (t *TenantStore) DeleteTool(ctx context.Context, tool bulkhead.Tool) error {
	err := t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionToolDeleted, target: tool.ID,
		changes: map[string]bulkhead.Change{"name": {Before: tool.Name}}},
		types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(t.s.table), Key: key(t.pk, toolSK(tool.Name)),
			ConditionExpression:       aws.String("tool_id = :id"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":id": str(tool.ID)}}},
		types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(t.s.table), Key: key(t.pk, toolIDSK(tool.ID)),
			ConditionExpression: aws.String("attribute_exists(PK)")}})
	return translate("delete tool", err, bulkhead.NotFound, "tool "+tool.ID+" not found")
}
