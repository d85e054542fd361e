package apigw

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// sharedKey returns the tier's shared key: the configured one, or the one
// this process found or created earlier, or, the first time, the one it finds
// or creates now (see Config.SharedKeys).
func (o *Onboarder) sharedKey(ctx context.Context, op string, tier bulkhead.TierName) (EdgeKey, error) {
	plan, err := o.plan(op, tier)
	if err != nil {
		return EdgeKey{}, err
	}
	if k := o.cfg.SharedKeys[tier]; k.ID != "" {
		if k.Value == "" {
			return EdgeKey{}, &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: fmt.Sprintf("shared key of tier %q has no value", tier)}
		}
		return EdgeKey{ID: k.ID, Value: k.Value, Shared: true, UsagePlanID: plan}, nil
	}

	select {
	case o.sharedSem <- struct{}{}:
	case <-ctx.Done():
		return EdgeKey{}, &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "API Gateway unavailable", Err: ctx.Err()}
	}
	defer func() { <-o.sharedSem }()
	if k, ok := o.shared[tier]; ok {
		return k, nil
	}

	name := sharedKeyName(tier)
	key, found, err := o.findKey(ctx, name)
	if err != nil {
		return EdgeKey{}, translate(op, "look up API key "+name, err)
	}
	if !found {
		if key, err = o.createKey(ctx, name, map[string]string{tagSharedTier: string(tier)}); err != nil {
			return EdgeKey{}, translate(op, "create API key "+name, err)
		}
	}
	// Also when found: the process that created it may have stopped
	// before attaching it.
	if err := o.attach(ctx, plan, key.ID); err != nil {
		return EdgeKey{}, translate(op, fmt.Sprintf("attach key %s to usage plan %s", key.ID, plan), err)
	}
	key.Shared, key.UsagePlanID = true, plan
	o.shared[tier] = key
	return key, nil
}

// findKey returns the oldest API key named exactly name (GetApiKeys' name
// query is not trusted to be an exact match), with its value.
func (o *Onboarder) findKey(ctx context.Context, name string) (EdgeKey, bool, error) {
	var matches []types.ApiKey
	p := apigateway.NewGetApiKeysPaginator(o.client, &apigateway.GetApiKeysInput{NameQuery: aws.String(name), IncludeValues: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return EdgeKey{}, false, err
		}
		for _, k := range page.Items {
			if aws.ToString(k.Name) == name {
				matches = append(matches, k)
			}
		}
	}
	if len(matches) == 0 {
		return EdgeKey{}, false, nil
	}
	// Oldest first, then by id, so every process settles on the same key
	// when a race created two.
	sort.Slice(matches, func(i, j int) bool {
		ti, tj := aws.ToTime(matches[i].CreatedDate), aws.ToTime(matches[j].CreatedDate)
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return aws.ToString(matches[i].Id) < aws.ToString(matches[j].Id)
	})
	k := matches[0]
	return EdgeKey{ID: aws.ToString(k.Id), Value: aws.ToString(k.Value)}, true, nil
}
