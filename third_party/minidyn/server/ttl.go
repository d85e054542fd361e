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

// ExpireItems deletes, in every table with time to live enabled, the items
// whose TTL attribute is a number of unix seconds before now, and returns how
// many it deleted. Nothing calls it on its own: the caller decides how often
// (DynamoDB deletes expired items within a few days, typically sooner). Its
// cost is that of the expired items, not of the tables.
func (c *Client) ExpireItems(now time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	n := 0
	for _, table := range c.tables {
		n += table.ExpireItems(now)
	}

	return n, nil
}

// ExpireItems deletes the expired items of every table (see Client.ExpireItems).
func (s *Server) ExpireItems(now time.Time) (int, error) {
	return s.client.ExpireItems(now)
}
