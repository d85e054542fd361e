package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// The count of tenants holding an API Gateway key of their own lives in one
// platform item (the account holds at most 10,000 keys per Region).
const (
	platformPK  = "PLATFORM"
	edgeKeysSK  = "EDGE_KEYS"
	edgeKeysAtt = "n"
)

// EdgeKeyCounter counts the tenants with an API Gateway key of their own,
// with conditional writes, so that concurrent onboardings cannot pass the
// configured maximum.
type EdgeKeyCounter struct{ s *Store }

// EdgeKeyCounter returns the store's counter of tenant API Gateway keys.
func (s *Store) EdgeKeyCounter() *EdgeKeyCounter { return &EdgeKeyCounter{s: s} }

// Reserve takes one of max slots and reports true, or false (changing
// nothing) when all are taken.
func (c *EdgeKeyCounter) Reserve(ctx context.Context, max int) (bool, error) {
	_, err := c.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(c.s.table), Key: key(platformPK, edgeKeysSK),
		UpdateExpression:          aws.String("ADD #n :one"),
		ConditionExpression:       aws.String("attribute_not_exists(#n) OR #n < :max"),
		ExpressionAttributeNames:  map[string]string{"#n": edgeKeysAtt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":max": num(int64(max))},
	})
	if err = translate("reserve edge key", err, bulkhead.Conflict, ""); bulkhead.IsCode(err, bulkhead.Conflict) {
		return false, nil
	}
	return err == nil, err
}

// Release gives back a slot taken by Reserve (never below zero).
func (c *EdgeKeyCounter) Release(ctx context.Context) error {
	_, err := c.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(c.s.table), Key: key(platformPK, edgeKeysSK),
		UpdateExpression:          aws.String("ADD #n :neg"),
		ConditionExpression:       aws.String("#n > :zero"),
		ExpressionAttributeNames:  map[string]string{"#n": edgeKeysAtt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":neg": num(-1), ":zero": num(0)},
	})
	if err = translate("release edge key", err, bulkhead.Conflict, ""); bulkhead.IsCode(err, bulkhead.Conflict) {
		return nil
	}
	return err
}
