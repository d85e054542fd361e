package apigw

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// The environment variables ConfigFromEnv reads; the CDK stack sets them on
// the admin function. The tier's name, upper-cased, completes each prefix:
// BULKHEAD_USAGE_PLAN_STARTER, BULKHEAD_SHARED_KEY_ID_ENTERPRISE, ...
const (
	EnvUsagePlanPrefix      = "BULKHEAD_USAGE_PLAN_"
	EnvSharedKeyIDPrefix    = "BULKHEAD_SHARED_KEY_ID_"
	EnvSharedKeyValuePrefix = "BULKHEAD_SHARED_KEY_VALUE_"
	EnvMaxTenantKeys        = "BULKHEAD_MAX_TENANT_KEYS"
)

// ConfigFromEnv builds a Config from the environment through getenv
// (os.Getenv in a Lambda's main). Every tier must have a usage plan; shared
// keys and BULKHEAD_MAX_TENANT_KEYS are optional, but a shared key needs both
// its id and its value.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{UsagePlans: map[bulkhead.TierName]string{}, SharedKeys: map[bulkhead.TierName]SharedKey{}}
	var errs []error
	for _, t := range bulkhead.Tiers() {
		suffix := strings.ToUpper(string(t.Name))
		if plan := getenv(EnvUsagePlanPrefix + suffix); plan != "" {
			cfg.UsagePlans[t.Name] = plan
		} else {
			errs = append(errs, fmt.Errorf("%s%s is not set", EnvUsagePlanPrefix, suffix))
		}
		id, value := getenv(EnvSharedKeyIDPrefix+suffix), getenv(EnvSharedKeyValuePrefix+suffix)
		switch {
		case id != "" && value != "":
			cfg.SharedKeys[t.Name] = SharedKey{ID: id, Value: value}
		case id != "" || value != "":
			errs = append(errs, fmt.Errorf("%s%s and %s%s must be set together", EnvSharedKeyIDPrefix, suffix, EnvSharedKeyValuePrefix, suffix))
		}
	}
	if s := getenv(EnvMaxTenantKeys); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvMaxTenantKeys, err))
		}
		cfg.MaxTenantKeys = n
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("API Gateway onboarding configuration: %w", err)
	}
	return cfg, nil
}
