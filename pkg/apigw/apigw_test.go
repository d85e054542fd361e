package apigw_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/apigw"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

func TestOnboardAttachesToTheTiersPlan(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	for i, tier := range []bulkhead.TierName{bulkhead.Starter, bulkhead.Professional, bulkhead.Enterprise} {
		tenant := fmt.Sprintf("t%d", i+1)
		keyID := fmt.Sprintf("k%d", i+1)
		k := mustOnboard(t, e, tenant, tier)
		assertCalls(t, e,
			`POST /apikeys {"enabled":true,"name":"bulkhead-`+tenant+`","tags":{"tenant_id":"`+tenant+`"}}`,
			`POST /usageplans/`+plans[tier]+`/keys {"keyId":"`+keyID+`","keyType":"API_KEY"}`,
		)
		want := apigw.EdgeKey{ID: keyID, Value: "v-" + keyID, UsagePlanID: plans[tier]}
		if k != want {
			t.Errorf("%s: got %+v, want %+v", tier, k, want)
		}
		if got := e.fake.plansOf(keyID); !reflect.DeepEqual(got, []string{plans[tier]}) {
			t.Errorf("%s: key %s is in plans %v, want [%s]", tier, keyID, got, plans[tier])
		}
		if fk, _ := e.fake.key(keyID); !fk.Enabled {
			t.Errorf("%s: key %s created disabled", tier, keyID)
		}
	}
	if got := e.counter.count(); got != 3 {
		t.Errorf("tenant key count: got %d, want 3", got)
	}
}

func TestOnboardRefusesBadInputWithoutCalls(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	_, err := e.o.Onboard(context.Background(), "t1", "platinum")
	assertCode(t, err, bulkhead.Invalid)
	_, err = e.o.Onboard(context.Background(), "", bulkhead.Starter)
	assertCode(t, err, bulkhead.Invalid)
	assertCalls(t, e)
	if got := e.counter.count(); got != 0 {
		t.Errorf("tenant key count: got %d, want 0", got)
	}
}

func TestChangeTierAttachesToTheNewPlanBeforeDetachingFromTheOld(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	k := mustOnboard(t, e, "t1", bulkhead.Starter)
	e.fake.takeCalls()

	moved, err := e.o.ChangeTier(context.Background(), k, bulkhead.Starter, bulkhead.Professional)
	if err != nil {
		t.Fatalf("ChangeTier: %v", err)
	}
	assertCalls(t, e,
		`POST /usageplans/plan-pro/keys {"keyId":"k1","keyType":"API_KEY"}`,
		`DELETE /usageplans/plan-starter/keys/k1`,
	)
	want := apigw.EdgeKey{ID: "k1", Value: "v-k1", UsagePlanID: "plan-pro"}
	if moved != want {
		t.Errorf("moved key: got %+v, want %+v", moved, want)
	}
	if got := e.fake.plansOf("k1"); !reflect.DeepEqual(got, []string{"plan-pro"}) {
		t.Errorf("plans of k1: got %v, want [plan-pro]", got)
	}

	// A retry of the same change (its answer was lost) finds the key on
	// the new plan already and succeeds without moving anything.
	again, err := e.o.ChangeTier(context.Background(), k, bulkhead.Starter, bulkhead.Professional)
	if err != nil {
		t.Fatalf("ChangeTier retried: %v", err)
	}
	assertCalls(t, e,
		`POST /usageplans/plan-pro/keys {"keyId":"k1","keyType":"API_KEY"}`,
		`GET /usageplans/plan-pro/keys/k1`,
		`DELETE /usageplans/plan-starter/keys/k1`,
	)
	if again != want {
		t.Errorf("retried move: got %+v, want %+v", again, want)
	}

	// Same plan: nothing to do.
	if _, err := e.o.ChangeTier(context.Background(), moved, bulkhead.Professional, bulkhead.Professional); err != nil {
		t.Fatalf("ChangeTier to the same tier: %v", err)
	}
	assertCalls(t, e)
}

func TestChangeTierWhenAKeyMayBeInOnePlanPerStage(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	e.fake.oneStage = true
	k := mustOnboard(t, e, "t1", bulkhead.Starter)
	e.fake.takeCalls()

	moved, err := e.o.ChangeTier(context.Background(), k, bulkhead.Starter, bulkhead.Enterprise)
	if err != nil {
		t.Fatalf("ChangeTier: %v", err)
	}
	assertCalls(t, e,
		`POST /usageplans/plan-ent/keys {"keyId":"k1","keyType":"API_KEY"}`, // 400: in another plan of the stage
		`GET /usageplans/plan-ent/keys/k1`,                                  // 404: so not already moved
		`DELETE /usageplans/plan-starter/keys/k1`,
		`POST /usageplans/plan-ent/keys {"keyId":"k1","keyType":"API_KEY"}`,
	)
	if moved.UsagePlanID != "plan-ent" {
		t.Errorf("moved key's plan: got %q, want plan-ent", moved.UsagePlanID)
	}
	if got := e.fake.plansOf("k1"); !reflect.DeepEqual(got, []string{"plan-ent"}) {
		t.Errorf("plans of k1: got %v, want [plan-ent]", got)
	}
}

func TestChangeTierPutsTheKeyBackWhenTheSwapFails(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	e.fake.oneStage = true
	k := mustOnboard(t, e, "t1", bulkhead.Starter)
	e.fake.takeCalls()
	// The first request to the new plan gets the one-plan-per-stage
	// refusal; the second, after the detach, fails for good (the SDK's 3
	// attempts).
	e.fake.failAfter(1, http.MethodPost, "/usageplans/plan-pro/keys", http.StatusInternalServerError, "InternalFailure", 3)

	_, err := e.o.ChangeTier(context.Background(), k, bulkhead.Starter, bulkhead.Professional)
	assertCode(t, err, bulkhead.Unavailable)
	attachPro := `POST /usageplans/plan-pro/keys {"keyId":"k1","keyType":"API_KEY"}`
	assertCalls(t, e,
		attachPro,
		`GET /usageplans/plan-pro/keys/k1`,
		`DELETE /usageplans/plan-starter/keys/k1`,
		attachPro, attachPro, attachPro,
		`POST /usageplans/plan-starter/keys {"keyId":"k1","keyType":"API_KEY"}`, // put back
	)
	if got := e.fake.plansOf("k1"); !reflect.DeepEqual(got, []string{"plan-starter"}) {
		t.Errorf("plans of k1 after a failed move: got %v, want [plan-starter]", got)
	}
}

func TestChangeTierOfASharedKeySwitchesToTheNewTiersSharedKey(t *testing.T) {
	shared := map[bulkhead.TierName]apigw.SharedKey{
		bulkhead.Starter:      {ID: "shared-s", Value: "v-shared-s"},
		bulkhead.Professional: {ID: "shared-p", Value: "v-shared-p"},
	}
	e := newEnv(t, apigw.Config{SharedKeys: shared})
	from := apigw.EdgeKey{ID: "shared-s", Value: "v-shared-s", Shared: true, UsagePlanID: "plan-starter"}
	got, err := e.o.ChangeTier(context.Background(), from, bulkhead.Starter, bulkhead.Professional)
	if err != nil {
		t.Fatalf("ChangeTier: %v", err)
	}
	want := apigw.EdgeKey{ID: "shared-p", Value: "v-shared-p", Shared: true, UsagePlanID: "plan-pro"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	assertCalls(t, e) // the shared key stays where it is
}

func TestSuspendAndResumePatchEnabled(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	k := mustOnboard(t, e, "t1", bulkhead.Starter)
	e.fake.takeCalls()

	if err := e.o.Suspend(context.Background(), k); err != nil {
		t.Fatalf("Suspend: %v", err)
	}
	assertCalls(t, e, `PATCH /apikeys/k1 {"patchOperations":[{"op":"replace","path":"/enabled","value":"false"}]}`)
	if fk, _ := e.fake.key("k1"); fk.Enabled {
		t.Error("key still enabled after Suspend")
	}

	if err := e.o.Resume(context.Background(), k); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	assertCalls(t, e, `PATCH /apikeys/k1 {"patchOperations":[{"op":"replace","path":"/enabled","value":"true"}]}`)
	if fk, _ := e.fake.key("k1"); !fk.Enabled {
		t.Error("key still disabled after Resume")
	}

	// A shared key is never disabled: it would suspend every tenant on it.
	shared := apigw.EdgeKey{ID: "shared-s", Value: "v", Shared: true, UsagePlanID: "plan-starter"}
	if err := e.o.Suspend(context.Background(), shared); err != nil {
		t.Fatalf("Suspend shared: %v", err)
	}
	if err := e.o.Resume(context.Background(), shared); err != nil {
		t.Fatalf("Resume shared: %v", err)
	}
	assertCalls(t, e)
}

func TestPastMaxTenantKeysTenantsShareTheirTiersKey(t *testing.T) {
	shared := map[bulkhead.TierName]apigw.SharedKey{
		bulkhead.Starter:      {ID: "shared-s", Value: "v-shared-s"},
		bulkhead.Professional: {ID: "shared-p", Value: "v-shared-p"},
	}
	e := newEnv(t, apigw.Config{MaxTenantKeys: 2, SharedKeys: shared})
	mustOnboard(t, e, "t1", bulkhead.Starter)
	mustOnboard(t, e, "t2", bulkhead.Professional)
	e.fake.takeCalls()

	third := mustOnboard(t, e, "t3", bulkhead.Starter)
	assertCalls(t, e) // no CreateApiKey, nor anything else
	if want := (apigw.EdgeKey{ID: "shared-s", Value: "v-shared-s", Shared: true, UsagePlanID: "plan-starter"}); third != want {
		t.Errorf("third tenant: got %+v, want %+v", third, want)
	}
	fourth := mustOnboard(t, e, "t4", bulkhead.Professional)
	if fourth.ID != "shared-p" || !fourth.Shared || fourth.UsagePlanID != "plan-pro" {
		t.Errorf("fourth tenant: got %+v, want the professional shared key", fourth)
	}
	assertCalls(t, e)
	if got := e.fake.keyCount(); got != 2 {
		t.Errorf("keys in API Gateway: got %d, want 2", got)
	}
	if got := e.counter.count(); got != 2 {
		t.Errorf("tenant key count: got %d, want 2", got)
	}
}

func TestSharedKeyIsCreatedOnFirstNeedThenReused(t *testing.T) {
	e := newEnv(t, apigw.Config{MaxTenantKeys: 1})
	mustOnboard(t, e, "t1", bulkhead.Starter)
	e.fake.takeCalls()

	second := mustOnboard(t, e, "t2", bulkhead.Starter)
	assertCalls(t, e,
		`GET /apikeys?includeValues=true&name=bulkhead-shared-starter`,
		`POST /apikeys {"enabled":true,"name":"bulkhead-shared-starter","tags":{"bulkhead_shared_tier":"starter"}}`,
		`POST /usageplans/plan-starter/keys {"keyId":"k2","keyType":"API_KEY"}`,
	)
	want := apigw.EdgeKey{ID: "k2", Value: "v-k2", Shared: true, UsagePlanID: "plan-starter"}
	if second != want {
		t.Errorf("second tenant: got %+v, want %+v", second, want)
	}
	if third := mustOnboard(t, e, "t3", bulkhead.Starter); third != want {
		t.Errorf("third tenant: got %+v, want %+v", third, want)
	}
	assertCalls(t, e) // remembered by the process

	// Another process finds the key by name instead of creating another.
	other := newOnboarderOn(e, apigw.Config{MaxTenantKeys: -1})
	k, err := other.Onboard(context.Background(), "t4", bulkhead.Starter)
	if err != nil {
		t.Fatalf("Onboard in another process: %v", err)
	}
	if k != want {
		t.Errorf("other process: got %+v, want %+v", k, want)
	}
	assertCalls(t, e,
		`GET /apikeys?includeValues=true&name=bulkhead-shared-starter`,
		`POST /usageplans/plan-starter/keys {"keyId":"k2","keyType":"API_KEY"}`, // 409: attached already
		`GET /usageplans/plan-starter/keys/k2`,
	)
}

// newOnboarderOn returns a second Onboarder (another process) on e's fake.
func newOnboarderOn(e *env, cfg apigw.Config) *apigw.Onboarder {
	cfg.UsagePlans, cfg.Now, cfg.Sleep = plans, e.clock.Now, e.clock.Sleep
	return apigw.New(e.client, cfg, e.counter)
}

func TestThrottledCreateApiKeyIsRetried(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	e.fake.fail(http.MethodPost, "/apikeys", http.StatusTooManyRequests, "TooManyRequestsException", 2)

	k := mustOnboard(t, e, "t1", bulkhead.Starter)
	create := `POST /apikeys {"enabled":true,"name":"bulkhead-t1","tags":{"tenant_id":"t1"}}`
	assertCalls(t, e, create, create, create,
		`POST /usageplans/plan-starter/keys {"keyId":"k1","keyType":"API_KEY"}`)
	if k.ID != "k1" || k.UsagePlanID != "plan-starter" {
		t.Errorf("got %+v, want k1 on plan-starter", k)
	}
}

func TestThrottlingThatOutlastsRetriesIsUnavailable(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	e.fake.fail(http.MethodPost, "/apikeys", http.StatusTooManyRequests, "TooManyRequestsException", 3, "7")

	_, err := e.o.Onboard(context.Background(), "t1", bulkhead.Starter)
	assertCode(t, err, bulkhead.Unavailable)
	if be := bulkhead.AsError(err); be == nil || be.RetryAfter != 7 {
		t.Errorf("RetryAfter: got %+v, want 7", be)
	}
	if got := len(e.fake.takeCalls()); got != 3 {
		t.Errorf("requests: got %d, want 3 CreateApiKey attempts", got)
	}
	if got := e.counter.count(); got != 0 {
		t.Errorf("tenant key count after a refused CreateApiKey: got %d, want 0", got)
	}
}

func TestOnboardRemovesTheKeyWhenAttachingFails(t *testing.T) {
	e := newEnv(t, apigw.Config{UsagePlans: map[bulkhead.TierName]string{bulkhead.Starter: "plan-gone"}})
	_, err := e.o.Onboard(context.Background(), "t1", bulkhead.Starter)
	assertCode(t, err, bulkhead.NotFound)
	assertCalls(t, e,
		`POST /apikeys {"enabled":true,"name":"bulkhead-t1","tags":{"tenant_id":"t1"}}`,
		`POST /usageplans/plan-gone/keys {"keyId":"k1","keyType":"API_KEY"}`,
		`DELETE /apikeys/k1`,
	)
	if got := e.fake.keyCount(); got != 0 {
		t.Errorf("keys left in API Gateway: got %d, want 0", got)
	}
	if got := e.counter.count(); got != 0 {
		t.Errorf("tenant key count: got %d, want 0", got)
	}
}

func TestErrorsAreTranslated(t *testing.T) {
	tests := []struct {
		status  int
		errType string
		times   int
		want    bulkhead.Code
	}{
		{http.StatusNotFound, "NotFoundException", 1, bulkhead.NotFound},
		{http.StatusConflict, "ConflictException", 1, bulkhead.Conflict},
		{http.StatusTooManyRequests, "TooManyRequestsException", 3, bulkhead.Unavailable},
		{http.StatusBadRequest, "BadRequestException", 1, bulkhead.Unavailable},
		{http.StatusUnauthorized, "UnauthorizedException", 1, bulkhead.Unavailable},
		{http.StatusInternalServerError, "InternalFailure", 3, bulkhead.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.errType, func(t *testing.T) {
			e := newEnv(t, apigw.Config{})
			e.fake.fail(http.MethodPatch, "/apikeys/", tt.status, tt.errType, tt.times)
			err := e.o.Suspend(context.Background(), apigw.EdgeKey{ID: "k9", UsagePlanID: "plan-starter"})
			assertCode(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.errType) {
				t.Errorf("error %q does not wrap the cause %s", err, tt.errType)
			}
		})
	}
	t.Run("unknown key", func(t *testing.T) {
		e := newEnv(t, apigw.Config{})
		err := e.o.Resume(context.Background(), apigw.EdgeKey{ID: "nope"})
		assertCode(t, err, bulkhead.NotFound)
	})
}

func TestCreateApiKeyIsLimitedToFivePerSecond(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	const tenants = 12
	var wg sync.WaitGroup
	errs := make(chan error, tenants)
	for i := range tenants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.o.Onboard(context.Background(), fmt.Sprintf("t%d", i), bulkhead.Starter); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Onboard: %v", err)
	}

	var at []time.Time
	for _, c := range e.fake.takeCalls() {
		if strings.HasPrefix(c.Line, "POST /apikeys ") {
			at = append(at, c.At)
		}
	}
	if len(at) != tenants {
		t.Fatalf("CreateApiKey requests: got %d, want %d", len(at), tenants)
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	for i := 0; i+5 < len(at); i++ {
		if d := at[i+5].Sub(at[i]); d < time.Second {
			t.Errorf("6 CreateApiKey requests within %v (from #%d)", d, i)
		}
	}
	// And no slower than needed: one every 200 ms, the first at once.
	if got, want := at[len(at)-1].Sub(at[0]), (tenants-1)*200*time.Millisecond; got != want {
		t.Errorf("first to last CreateApiKey: got %v, want %v", got, want)
	}
}

func TestCreateApiKeyRateLimitWaitHonoursTheContext(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	mustOnboard(t, e, "t1", bulkhead.Starter)
	e.fake.takeCalls()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.o.Onboard(ctx, "t2", bulkhead.Starter)
	assertCode(t, err, bulkhead.Unavailable)
	assertCalls(t, e)
	if got := e.counter.count(); got != 1 {
		t.Errorf("tenant key count: got %d, want 1 (a key never requested gives its slot back)", got)
	}
}

func TestOffboardDeletesTheKeyAndFreesItsSlot(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	k := mustOnboard(t, e, "t1", bulkhead.Starter)
	e.fake.takeCalls()

	if err := e.o.Offboard(context.Background(), k); err != nil {
		t.Fatalf("Offboard: %v", err)
	}
	assertCalls(t, e, `DELETE /apikeys/k1`)
	if got := e.counter.count(); got != 0 {
		t.Errorf("tenant key count: got %d, want 0", got)
	}
	e.counter.Reserve(context.Background(), 10) // somebody else's slot

	// Again: the key is gone, which is fine, and no second slot is freed.
	if err := e.o.Offboard(context.Background(), k); err != nil {
		t.Fatalf("Offboard again: %v", err)
	}
	if got := e.counter.count(); got != 1 {
		t.Errorf("tenant key count after a repeated Offboard: got %d, want 1", got)
	}
	if err := e.o.Offboard(context.Background(), apigw.EdgeKey{ID: "shared-s", Shared: true}); err != nil {
		t.Fatalf("Offboard shared: %v", err)
	}
	assertCalls(t, e, `DELETE /apikeys/k1`)
}

func TestCountAccountKeysPages(t *testing.T) {
	e := newEnv(t, apigw.Config{})
	e.fake.pageSize = 3
	for i := range 7 {
		mustOnboard(t, e, fmt.Sprintf("t%d", i), bulkhead.Starter)
	}
	e.fake.takeCalls()
	n, err := e.o.CountAccountKeys(context.Background())
	if err != nil {
		t.Fatalf("CountAccountKeys: %v", err)
	}
	if n != 7 {
		t.Errorf("got %d keys, want 7", n)
	}
	assertCalls(t, e,
		`GET /apikeys?limit=500`,
		`GET /apikeys?limit=500&position=3`,
		`GET /apikeys?limit=500&position=6`,
	)
}

func TestConfigFromEnv(t *testing.T) {
	full := map[string]string{
		"BULKHEAD_USAGE_PLAN_STARTER":         "p1",
		"BULKHEAD_USAGE_PLAN_PROFESSIONAL":    "p2",
		"BULKHEAD_USAGE_PLAN_ENTERPRISE":      "p3",
		"BULKHEAD_SHARED_KEY_ID_STARTER":      "s1",
		"BULKHEAD_SHARED_KEY_VALUE_STARTER":   "v1",
		"BULKHEAD_MAX_TENANT_KEYS":            "500",
		"BULKHEAD_SHARED_KEY_ID_PROFESSIONAL": "",
	}
	without := func(k string) map[string]string {
		m := map[string]string{}
		for kk, v := range full {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	with := func(k, v string) map[string]string {
		m := without(k)
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"complete", full, ""},
		{"a tier without a plan", without("BULKHEAD_USAGE_PLAN_ENTERPRISE"), "BULKHEAD_USAGE_PLAN_ENTERPRISE is not set"},
		{"a shared key without its value", without("BULKHEAD_SHARED_KEY_VALUE_STARTER"), "must be set together"},
		{"a bad maximum", with("BULKHEAD_MAX_TENANT_KEYS", "lots"), "BULKHEAD_MAX_TENANT_KEYS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := apigw.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error: got %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			wantPlans := map[bulkhead.TierName]string{bulkhead.Starter: "p1", bulkhead.Professional: "p2", bulkhead.Enterprise: "p3"}
			if !reflect.DeepEqual(cfg.UsagePlans, wantPlans) {
				t.Errorf("UsagePlans: got %v, want %v", cfg.UsagePlans, wantPlans)
			}
			wantShared := map[bulkhead.TierName]apigw.SharedKey{bulkhead.Starter: {ID: "s1", Value: "v1"}}
			if !reflect.DeepEqual(cfg.SharedKeys, wantShared) {
				t.Errorf("SharedKeys: got %v, want %v", cfg.SharedKeys, wantShared)
			}
			if cfg.MaxTenantKeys != 500 {
				t.Errorf("MaxTenantKeys: got %d, want 500", cfg.MaxTenantKeys)
			}
		})
	}
}
