package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// TenantCredentials gives each tenant credentials that reach only its own
// partition (an STS session policy on dynamodb:LeadingKeys); nil from
// ForTenant means the client's own credentials (locally, where the embedded
// servers ignore IAM).
type TenantCredentials interface {
	ForTenant(tenantID string) aws.CredentialsProvider
}

// WithTenantCredentials returns a store whose tenant-bound stores call
// DynamoDB with the tenant's own credentials. Store-level calls (key
// lookup, tenant list, invoices index) keep the function's.
func (s *Store) WithTenantCredentials(c TenantCredentials) *Store {
	cp := *s
	cp.creds = c
	return &cp
}

// scoped returns the store a tenant's calls go through.
func (s *Store) scoped(tid string) *Store {
	if s.creds == nil {
		return s
	}
	cp := s.creds.ForTenant(tid)
	if cp == nil {
		return s
	}
	scoped := *s
	scoped.db = scopedClient{Client: s.db, creds: cp}
	return &scoped
}

// scopedClient sets the tenant's credentials on every call, last, so that
// no caller option can replace them.
type scopedClient struct {
	Client
	creds aws.CredentialsProvider
}

func (c scopedClient) opts(f []func(*dynamodb.Options)) []func(*dynamodb.Options) {
	return append(f[:len(f):len(f)], func(o *dynamodb.Options) { o.Credentials = c.creds })
}

func (c scopedClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, f ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return c.Client.GetItem(ctx, in, c.opts(f)...)
}

func (c scopedClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, f ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return c.Client.PutItem(ctx, in, c.opts(f)...)
}

func (c scopedClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, f ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return c.Client.UpdateItem(ctx, in, c.opts(f)...)
}

func (c scopedClient) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, f ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return c.Client.DeleteItem(ctx, in, c.opts(f)...)
}

func (c scopedClient) Query(ctx context.Context, in *dynamodb.QueryInput, f ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return c.Client.Query(ctx, in, c.opts(f)...)
}

func (c scopedClient) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, f ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return c.Client.TransactWriteItems(ctx, in, c.opts(f)...)
}

func (c scopedClient) TransactGetItems(ctx context.Context, in *dynamodb.TransactGetItemsInput, f ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error) {
	return c.Client.TransactGetItems(ctx, in, c.opts(f)...)
}

func (c scopedClient) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, f ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return c.Client.BatchGetItem(ctx, in, c.opts(f)...)
}

func (c scopedClient) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, f ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return c.Client.BatchWriteItem(ctx, in, c.opts(f)...)
}
