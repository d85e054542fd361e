package s3store

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TenantCredentials gives each tenant credentials that reach only its own
// prefix (an STS session policy on tenants/<id>/*); nil from ForTenant means
// the client's own credentials (locally, where the embedded server ignores IAM).
type TenantCredentials interface {
	ForTenant(tenantID string) aws.CredentialsProvider
}

// WithTenantCredentials returns a store whose tenant stores call S3 with the
// tenant's own credentials.
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
	scoped.client = scopedClient{S3API: s.client, creds: cp}
	return &scoped
}

// scopedClient sets the tenant's credentials on every call, last.
type scopedClient struct {
	S3API
	creds aws.CredentialsProvider
}

func (c scopedClient) opts(f []func(*s3.Options)) []func(*s3.Options) {
	return append(f[:len(f):len(f)], func(o *s3.Options) { o.Credentials = c.creds })
}

func (c scopedClient) PutObject(ctx context.Context, in *s3.PutObjectInput, f ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return c.S3API.PutObject(ctx, in, c.opts(f)...)
}

func (c scopedClient) GetObject(ctx context.Context, in *s3.GetObjectInput, f ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return c.S3API.GetObject(ctx, in, c.opts(f)...)
}

func (c scopedClient) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, f ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return c.S3API.ListObjectsV2(ctx, in, c.opts(f)...)
}

func (c scopedClient) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, f ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	return c.S3API.DeleteObjects(ctx, in, c.opts(f)...)
}

func (c scopedClient) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, f ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return c.S3API.DeleteObject(ctx, in, c.opts(f)...)
}
