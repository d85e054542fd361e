package apigw

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Client is the part of the API Gateway client this package uses, with the
// SDK's own signatures, so that *apigateway.Client can be passed as is.
type Client interface {
	CreateApiKey(ctx context.Context, params *apigateway.CreateApiKeyInput, optFns ...func(*apigateway.Options)) (*apigateway.CreateApiKeyOutput, error)
	UpdateApiKey(ctx context.Context, params *apigateway.UpdateApiKeyInput, optFns ...func(*apigateway.Options)) (*apigateway.UpdateApiKeyOutput, error)
	DeleteApiKey(ctx context.Context, params *apigateway.DeleteApiKeyInput, optFns ...func(*apigateway.Options)) (*apigateway.DeleteApiKeyOutput, error)
	GetApiKeys(ctx context.Context, params *apigateway.GetApiKeysInput, optFns ...func(*apigateway.Options)) (*apigateway.GetApiKeysOutput, error)
	CreateUsagePlanKey(ctx context.Context, params *apigateway.CreateUsagePlanKeyInput, optFns ...func(*apigateway.Options)) (*apigateway.CreateUsagePlanKeyOutput, error)
	GetUsagePlanKey(ctx context.Context, params *apigateway.GetUsagePlanKeyInput, optFns ...func(*apigateway.Options)) (*apigateway.GetUsagePlanKeyOutput, error)
	DeleteUsagePlanKey(ctx context.Context, params *apigateway.DeleteUsagePlanKeyInput, optFns ...func(*apigateway.Options)) (*apigateway.DeleteUsagePlanKeyOutput, error)
}

var _ Client = (*apigateway.Client)(nil)

// KeyCounter counts the tenants that have an API Gateway key of their own,
// so that Onboard knows when to stop creating keys. In the real wiring it is
// one conditional counter item in DynamoDB: Reserve is an UpdateItem
// "ADD n 1" with the condition "attribute_not_exists(n) OR n < :max", and
// Release an "ADD n -1" with the condition "n > 0".
//
// It is a counter rather than a count of the account's keys (GetApiKeys,
// paginated) because a reservation is atomic: two onboardings racing for the
// last slot cannot both take it, while counting keys and then creating one
// can. It also costs one write instead of up to twenty page reads, and
// GetApiKeys has throttling of its own. The counter can only drift upwards
// (a slot is reserved before its key is created, and released only once a key
// is known not to exist), which errs on the side of the account limit;
// CountAccountKeys is there to reconcile it.
//
// Implementations return *bulkhead.Error (typically Unavailable) when the
// count cannot be read or written; any other error is reported as
// Unavailable.
type KeyCounter interface {
	// Reserve takes one of max tenant key slots and reports true, or
	// reports false, changing nothing, when all max are taken.
	Reserve(ctx context.Context, max int) (bool, error)
	// Release gives back a slot taken by Reserve.
	Release(ctx context.Context) error
}

// DefaultMaxTenantKeys is Config.MaxTenantKeys when it is zero: 1,000 below
// the account's 10,000 keys per Region, leaving room for the shared keys, the
// keys of silo stacks and anything else the account holds.
const DefaultMaxTenantKeys = 9000

// SharedKey is an API Gateway key that many tenants of one tier share.
type SharedKey struct {
	// ID is the API key's id.
	ID string
	// Value is the API key's value, which the authorizer returns as
	// usageIdentifierKey.
	Value string
}

// Config configures an Onboarder.
type Config struct {
	// UsagePlans maps each tier to its usage plan id (the CDK stack passes
	// them to the admin function as env, e.g. BULKHEAD_USAGE_PLAN_STARTER;
	// see ConfigFromEnv).
	UsagePlans map[bulkhead.TierName]string
	// MaxTenantKeys: past this many tenants with their own API Gateway key,
	// new tenants share their tier's key (the account holds at most 10,000
	// keys per Region). Zero means DefaultMaxTenantKeys; a negative value
	// means that every tenant shares.
	MaxTenantKeys int
	// SharedKeys maps each tier to the API key shared by the tenants beyond
	// MaxTenantKeys. A configured key must already be attached to its tier's
	// usage plan (the CDK stack's job); nothing is checked or called for it.
	//
	// A tier missing here gets its shared key on first need: the Onboarder
	// looks for a key named "bulkhead-shared-<tier>" (GetApiKeys by name),
	// creates it if there is none (enabled, tagged bulkhead_shared_tier), and
	// attaches it to the tier's plan, once per process. Two processes racing
	// there may create two such keys; both are attached and work, each with
	// its own share of the tier's throttle, and every later lookup picks the
	// same one of them (the oldest). Configuring the keys avoids that, and
	// avoids the calls.
	SharedKeys map[bulkhead.TierName]SharedKey
	// Now is the clock of the CreateApiKey rate limiter; nil means time.Now.
	Now func() time.Time
	// Sleep waits for d or until ctx ends; nil means a real timer. Tests
	// pass a fake that advances their clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

// EdgeKey is what the platform stores on the tenant: the API Gateway key id,
// its value (the usageIdentifierKey the authorizer returns), whether it is
// shared, and the tier's plan it is attached to.
type EdgeKey = bulkhead.EdgeKey

// Names and tags of the keys this package creates.
const (
	tenantKeyPrefix = "bulkhead-"
	sharedKeyPrefix = "bulkhead-shared-"
	tagTenantID     = "tenant_id"
	tagSharedTier   = "bulkhead_shared_tier"
	keyTypeAPIKey   = "API_KEY"
)

// tenantKeyName is the name of a tenant's own API key.
func tenantKeyName(tenantID string) string { return tenantKeyPrefix + tenantID }

// sharedKeyName is the name of a tier's shared API key.
func sharedKeyName(tier bulkhead.TierName) string { return sharedKeyPrefix + string(tier) }

// Onboarder manages tenants' API Gateway keys and their usage plans. It is
// safe for concurrent use; make one per process, since its CreateApiKey rate
// limiter only spaces the calls it sees.
type Onboarder struct {
	client  Client
	cfg     Config
	counter KeyCounter
	maxKeys int
	create  *limiter

	// sharedSem guards shared, and makes one caller at a time look up or
	// create a missing shared key.
	sharedSem chan struct{}
	shared    map[bulkhead.TierName]EdgeKey
}

// New returns an Onboarder over client. It makes no request.
func New(c Client, cfg Config, counter KeyCounter) *Onboarder {
	now, sleep := cfg.Now, cfg.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepContext
	}
	maxKeys := cfg.MaxTenantKeys
	if maxKeys == 0 {
		maxKeys = DefaultMaxTenantKeys
	}
	return &Onboarder{
		client:    c,
		cfg:       cfg,
		counter:   counter,
		maxKeys:   maxKeys,
		create:    newLimiter(createKeyInterval, now, sleep),
		sharedSem: make(chan struct{}, 1),
		shared:    map[bulkhead.TierName]EdgeKey{},
	}
}

// Onboard gives a new tenant its edge key: an enabled API key of its own,
// named "bulkhead-<tenantID>" and tagged tenant_id, attached to the tier's
// usage plan; or, once MaxTenantKeys tenants have their own, the tier's
// shared key.
//
// Onboard is not idempotent: each successful call for a tenant creates a
// key, so call it once per tenant and store the result. A failed call
// deletes the key it created (and gives its slot back) before returning.
func (o *Onboarder) Onboard(ctx context.Context, tenantID string, tier bulkhead.TierName) (EdgeKey, error) {
	const op = "apigw.Onboard"
	if tenantID == "" {
		return EdgeKey{}, &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "tenant id is required"}
	}
	plan, err := o.plan(op, tier)
	if err != nil {
		return EdgeKey{}, err
	}
	own := false
	if o.maxKeys > 0 {
		if own, err = o.counter.Reserve(ctx, o.maxKeys); err != nil {
			return EdgeKey{}, counterError(op, err)
		}
	}
	if !own {
		return o.sharedKey(ctx, op, tier)
	}

	key, err := o.createKey(ctx, tenantKeyName(tenantID), map[string]string{tagTenantID: tenantID})
	if err != nil {
		// Give the slot back only when the key surely does not exist: after
		// a timeout it may, and counting it is the safe mistake.
		if answered(err) || errors.Is(err, errNotSent) {
			err = errors.Join(err, o.release(ctx))
		}
		return EdgeKey{}, translate(op, "create API key for tenant "+tenantID, err)
	}
	if err := o.attach(ctx, plan, key.ID); err != nil {
		// A key in no plan is useless and still counts against the
		// account's limit: remove it, and its slot with it.
		if _, derr := o.client.DeleteApiKey(ctx, &apigateway.DeleteApiKeyInput{ApiKey: aws.String(key.ID)}); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete unattached key %s: %w", key.ID, derr))
		} else {
			err = errors.Join(err, o.release(ctx))
		}
		return EdgeKey{}, translate(op, fmt.Sprintf("attach key %s to usage plan %s", key.ID, plan), err)
	}
	key.UsagePlanID = plan
	return key, nil
}

// ChangeTier moves a tenant's key from the usage plan of tier from to the
// plan of tier to, and returns the key as it now is. The plan it leaves is
// key.UsagePlanID (from's plan when that is empty).
//
// The key is attached to the new plan before it is detached from the old
// one, so that it is never in no plan: a request whose usageIdentifierKey
// is in no plan of the stage is refused (403) by API Gateway. API Gateway
// may refuse that order, since a key may be in only one usage plan per API
// stage and every tier's plan covers the same stage; then, and only then,
// the key is detached and re-attached, which leaves it planless for the
// milliseconds between the two calls, and is put back on the old plan if
// the second call fails. ChangeTier is safe to retry.
//
// A shared key is not moved (that would move every tenant sharing it): the
// tenant switches to the new tier's shared key instead.
func (o *Onboarder) ChangeTier(ctx context.Context, key EdgeKey, from, to bulkhead.TierName) (EdgeKey, error) {
	const op = "apigw.ChangeTier"
	newPlan, err := o.plan(op, to)
	if err != nil {
		return EdgeKey{}, err
	}
	if key.Shared {
		return o.sharedKey(ctx, op, to)
	}
	if key.ID == "" {
		return EdgeKey{}, &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "API key id is required"}
	}
	oldPlan := key.UsagePlanID
	if oldPlan == "" {
		if oldPlan, err = o.plan(op, from); err != nil {
			return EdgeKey{}, err
		}
	}
	moved := key
	moved.UsagePlanID = newPlan
	if oldPlan == newPlan {
		return moved, nil
	}

	switch err := o.attach(ctx, newPlan, key.ID); {
	case err == nil:
	case errors.Is(err, errOnePlanPerStage):
		return o.swap(ctx, op, key, oldPlan, newPlan)
	default:
		return EdgeKey{}, translate(op, fmt.Sprintf("attach key %s to usage plan %s", key.ID, newPlan), err)
	}
	if err := o.detach(ctx, oldPlan, key.ID); err != nil {
		// Still on both plans: a retry finds it on the new one and
		// detaches it from the old one.
		return EdgeKey{}, translate(op, fmt.Sprintf("detach key %s from usage plan %s", key.ID, oldPlan), err)
	}
	return moved, nil
}

// swap moves a key that API Gateway will not have in two plans at once:
// detach, then attach, and re-attach to the old plan if that fails.
func (o *Onboarder) swap(ctx context.Context, op string, key EdgeKey, oldPlan, newPlan string) (EdgeKey, error) {
	if err := o.detach(ctx, oldPlan, key.ID); err != nil {
		return EdgeKey{}, translate(op, fmt.Sprintf("detach key %s from usage plan %s", key.ID, oldPlan), err)
	}
	if err := o.attach(ctx, newPlan, key.ID); err != nil {
		if rerr := o.attach(ctx, oldPlan, key.ID); rerr != nil {
			err = errors.Join(err, fmt.Errorf("re-attach key %s to usage plan %s: %w", key.ID, oldPlan, rerr))
		}
		return EdgeKey{}, translate(op, fmt.Sprintf("attach key %s to usage plan %s", key.ID, newPlan), err)
	}
	key.UsagePlanID = newPlan
	return key, nil
}

// Suspend disables a tenant's own key, so that API Gateway refuses it even
// while the authorizer's cached answer still names it.
//
// It does nothing for a shared key: disabling it would suspend every tenant
// sharing it. Suspension does not depend on it anyway: the authorizer refuses
// a suspended tenant before any key is chosen, so this is defence in depth
// for tenants with their own key.
func (o *Onboarder) Suspend(ctx context.Context, key EdgeKey) error {
	return o.setEnabled(ctx, "apigw.Suspend", key, false)
}

// Resume enables a tenant's own key again; it does nothing for a shared key.
func (o *Onboarder) Resume(ctx context.Context, key EdgeKey) error {
	return o.setEnabled(ctx, "apigw.Resume", key, true)
}

// setEnabled patches a key's /enabled.
func (o *Onboarder) setEnabled(ctx context.Context, op string, key EdgeKey, enabled bool) error {
	if key.Shared {
		return nil
	}
	if key.ID == "" {
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "API key id is required"}
	}
	_, err := o.client.UpdateApiKey(ctx, &apigateway.UpdateApiKeyInput{
		ApiKey: aws.String(key.ID),
		PatchOperations: []types.PatchOperation{{
			Op: types.OpReplace, Path: aws.String("/enabled"), Value: aws.String(fmt.Sprint(enabled)),
		}},
	})
	return translate(op, "API key "+key.ID, err)
}

// Offboard deletes a departing tenant's own key (which also removes it from
// its usage plan) and gives its slot back. It does nothing for a shared key.
// A key that no longer exists is not an error, but its slot is not given
// back, since the call that deleted it may have done so already.
func (o *Onboarder) Offboard(ctx context.Context, key EdgeKey) error {
	const op = "apigw.Offboard"
	if key.Shared {
		return nil
	}
	if key.ID == "" {
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "API key id is required"}
	}
	_, err := o.client.DeleteApiKey(ctx, &apigateway.DeleteApiKeyInput{ApiKey: aws.String(key.ID)})
	switch {
	case isAPICode(err, "NotFoundException"):
		return nil
	case err != nil:
		return translate(op, "API key "+key.ID, err)
	}
	if err := o.counter.Release(ctx); err != nil {
		return counterError(op, err)
	}
	return nil
}

// CountAccountKeys counts every API key of the account in the client's
// Region, whoever created it: the number the 10,000 limit applies to. It
// reads the keys 500 at a time, so it is for reconciling the KeyCounter and
// for alarms, not for the onboarding path.
func (o *Onboarder) CountAccountKeys(ctx context.Context) (int, error) {
	const op = "apigw.CountAccountKeys"
	n := 0
	p := apigateway.NewGetApiKeysPaginator(o.client, &apigateway.GetApiKeysInput{Limit: aws.Int32(500)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, translate(op, "list API keys", err)
		}
		n += len(page.Items)
	}
	return n, nil
}

// plan returns the usage plan id of a tier.
func (o *Onboarder) plan(op string, tier bulkhead.TierName) (string, error) {
	if id := o.cfg.UsagePlans[tier]; id != "" {
		return id, nil
	}
	return "", &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: fmt.Sprintf("tier %q has no usage plan", tier)}
}

// release gives a slot back; its error is only ever joined to another one.
func (o *Onboarder) release(ctx context.Context) error {
	if err := o.counter.Release(ctx); err != nil {
		return fmt.Errorf("release tenant key slot: %w", err)
	}
	return nil
}

// createKey creates an enabled API key, within the CreateApiKey rate limit,
// and returns its id and value. The error is the SDK's, untranslated.
func (o *Onboarder) createKey(ctx context.Context, name string, tags map[string]string) (EdgeKey, error) {
	var out *apigateway.CreateApiKeyOutput
	err := o.create.do(ctx, func() error {
		var err error
		out, err = o.client.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{
			Name:    aws.String(name),
			Enabled: true,
			Tags:    tags,
		})
		return err
	})
	if err != nil {
		return EdgeKey{}, err
	}
	return EdgeKey{ID: aws.ToString(out.Id), Value: aws.ToString(out.Value)}, nil
}

// errOnePlanPerStage is attach's answer when API Gateway refuses to add a key
// to a plan without it being there already: the key is in another plan for
// the same API stage.
var errOnePlanPerStage = errors.New("API key is in another usage plan for the same API stage")

// attach adds a key to a usage plan, and succeeds if it is there already.
// The error is the SDK's, untranslated, or errOnePlanPerStage.
//
// API Gateway's refusals are not specific enough to tell "already in this
// plan" from "in another plan for the same stage" (a ConflictException or a
// BadRequestException either way), so on either one attach asks the plan
// whether it holds the key.
func (o *Onboarder) attach(ctx context.Context, plan, keyID string) error {
	_, err := o.client.CreateUsagePlanKey(ctx, &apigateway.CreateUsagePlanKeyInput{
		UsagePlanId: aws.String(plan), KeyId: aws.String(keyID), KeyType: aws.String(keyTypeAPIKey),
	})
	if err == nil || !isAPICode(err, "ConflictException", "BadRequestException") {
		return err
	}
	_, gerr := o.client.GetUsagePlanKey(ctx, &apigateway.GetUsagePlanKeyInput{UsagePlanId: aws.String(plan), KeyId: aws.String(keyID)})
	switch {
	case gerr == nil:
		return nil
	case isAPICode(gerr, "NotFoundException"):
		return fmt.Errorf("%w: %w", errOnePlanPerStage, err)
	default:
		return errors.Join(err, gerr)
	}
}

// detach removes a key from a usage plan, and succeeds if it is not there.
func (o *Onboarder) detach(ctx context.Context, plan, keyID string) error {
	_, err := o.client.DeleteUsagePlanKey(ctx, &apigateway.DeleteUsagePlanKeyInput{UsagePlanId: aws.String(plan), KeyId: aws.String(keyID)})
	if isAPICode(err, "NotFoundException") {
		return nil
	}
	return err
}
