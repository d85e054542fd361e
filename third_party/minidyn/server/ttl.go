package server

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
)

// TimeToLiveSpecification mirrors DynamoDB's TimeToLiveSpecification.
type TimeToLiveSpecification struct {
	AttributeName *string `json:"AttributeName,omitempty"`
	Enabled       *bool   `json:"Enabled,omitempty"`
}

// UpdateTimeToLiveInput mirrors DynamoDB's UpdateTimeToLiveInput.
type UpdateTimeToLiveInput struct {
	TableName               *string                  `json:"TableName,omitempty"`
	TimeToLiveSpecification *TimeToLiveSpecification `json:"TimeToLiveSpecification,omitempty"`
}

// UpdateTimeToLiveOutput mirrors DynamoDB's UpdateTimeToLiveOutput.
type UpdateTimeToLiveOutput struct {
	TimeToLiveSpecification *TimeToLiveSpecification `json:"TimeToLiveSpecification,omitempty"`
}

// DescribeTimeToLiveInput mirrors DynamoDB's DescribeTimeToLiveInput.
type DescribeTimeToLiveInput struct {
	TableName *string `json:"TableName,omitempty"`
}

// TimeToLiveDescription mirrors DynamoDB's TimeToLiveDescription.
type TimeToLiveDescription struct {
	AttributeName    *string `json:"AttributeName,omitempty"`
	TimeToLiveStatus string  `json:"TimeToLiveStatus,omitempty"`
}

// DescribeTimeToLiveOutput mirrors DynamoDB's DescribeTimeToLiveOutput.
type DescribeTimeToLiveOutput struct {
	TimeToLiveDescription *TimeToLiveDescription `json:"TimeToLiveDescription,omitempty"`
}

func ttlValidation(msg string) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: msg}
}

// UpdateTimeToLive enables or disables time to live on a table. The change
// takes effect at once (DynamoDB takes up to an hour), and, as in DynamoDB,
// enabling it twice or disabling it twice is refused.
func (c *Client) UpdateTimeToLive(ctx context.Context, input *UpdateTimeToLiveInput) (*UpdateTimeToLiveOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	table, err := c.getTable(aws.ToString(input.TableName))
	if err != nil {
		return nil, err
	}

	spec := input.TimeToLiveSpecification
	if spec == nil || spec.Enabled == nil || aws.ToString(spec.AttributeName) == "" {
		return nil, ttlValidation("1 validation error detected: TimeToLiveSpecification must name an AttributeName and set Enabled")
	}

	current := table.TTLAttribute()

	switch {
	case *spec.Enabled && current != "":
		return nil, ttlValidation("TimeToLive is already enabled")
	case !*spec.Enabled && current == "":
		return nil, ttlValidation("TimeToLive is already disabled")
	case !*spec.Enabled && current != aws.ToString(spec.AttributeName):
		return nil, ttlValidation("TimeToLive is active on a different AttributeName: current AttributeName is " + current)
	case *spec.Enabled:
		table.SetTTLAttribute(aws.ToString(spec.AttributeName))
	default:
		table.SetTTLAttribute("")
	}

	return &UpdateTimeToLiveOutput{TimeToLiveSpecification: &TimeToLiveSpecification{
		AttributeName: spec.AttributeName, Enabled: spec.Enabled}}, nil
}

// DescribeTimeToLive returns a table's time to live setting.
func (c *Client) DescribeTimeToLive(ctx context.Context, input *DescribeTimeToLiveInput) (*DescribeTimeToLiveOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	table, err := c.getTable(aws.ToString(input.TableName))
	if err != nil {
		return nil, err
	}

	attr := table.TTLAttribute()
	if attr == "" {
		return &DescribeTimeToLiveOutput{TimeToLiveDescription: &TimeToLiveDescription{TimeToLiveStatus: "DISABLED"}}, nil
	}

	return &DescribeTimeToLiveOutput{TimeToLiveDescription: &TimeToLiveDescription{
		AttributeName: aws.String(attr), TimeToLiveStatus: "ENABLED"}}, nil
}

// ExpiredKeys returns the primary keys of the items of a table whose TTL
// attribute is a number of unix seconds before now, earliest first, at most
// max of them (all when max <= 0); none when time to live is disabled. It
// deletes nothing: the caller decides how and when (DynamoDB deletes expired
// items within a few days, typically sooner), for instance with a DeleteItem
// conditioned on the attribute still being in the past. Its cost is that of
// the keys returned, not of the table.
func (c *Client) ExpiredKeys(tableName string, now time.Time, max int) ([]map[string]*AttributeValue, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	table, err := c.getTable(tableName)
	if err != nil {
		return nil, err
	}

	found := table.ExpiredKeys(now, max)
	keys := make([]map[string]*AttributeValue, len(found))

	for i, k := range found {
		keys[i] = mapTypesMapToAttributeValue(k)
	}

	return keys, nil
}

// ExpiredKeys lists a table's expired items (see Client.ExpiredKeys).
func (s *Server) ExpiredKeys(tableName string, now time.Time, max int) ([]map[string]*AttributeValue, error) {
	return s.client.ExpiredKeys(tableName, now, max)
}
