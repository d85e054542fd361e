package platform

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/bedrock"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai"
)

// Models are the model clients a process has: the offline model always,
// and each real provider the environment configures.
type Models struct {
	Offline   bulkhead.Model
	Providers map[string]bulkhead.Model
}

// ModelsFromEnv builds the model clients from the environment:
//   - the offline model, its latency from BULKHEAD_LOCAL_MODEL_DELAY (a Go
//     duration, default 0);
//   - an OpenAI-compatible endpoint when BULKHEAD_OPENAI_BASE_URL is set,
//     its key from BULKHEAD_OPENAI_API_KEY (optional; local) or read once
//     from the Secrets Manager secret BULKHEAD_OPENAI_API_KEY_SECRET names
//     (AWS: the key is never in the function's environment);
//   - Amazon Bedrock when BULKHEAD_BEDROCK is "on" (the Lambda functions set
//     it), with the SDK's usual credentials, region and endpoint
//     (AWS_ENDPOINT_URL_BEDROCK_RUNTIME).
//
// cfg is the process's AWS configuration when it has one (Lambda); when
// nil, one is loaded from the environment only if a provider needs it.
func ModelsFromEnv(ctx context.Context, cfg *aws.Config) (Models, error) {
	var delay time.Duration
	if v := os.Getenv("BULKHEAD_LOCAL_MODEL_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Models{}, fmt.Errorf("BULKHEAD_LOCAL_MODEL_DELAY=%q is not a non-negative Go duration (e.g. 200ms)", v)
		}
		delay = d
	}
	m := Models{Offline: offline.New(delay), Providers: map[string]bulkhead.Model{}}
	awsConfig := func() (aws.Config, error) {
		if cfg == nil {
			c, err := awsclients.FromEnvironment(ctx)
			if err != nil {
				return aws.Config{}, err
			}
			cfg = &c
		}
		return *cfg, nil
	}
	if base := os.Getenv("BULKHEAD_OPENAI_BASE_URL"); base != "" {
		key := os.Getenv("BULKHEAD_OPENAI_API_KEY")
		if secret := os.Getenv("BULKHEAD_OPENAI_API_KEY_SECRET"); secret != "" {
			c, err := awsConfig()
			if err != nil {
				return Models{}, err
			}
			if key, err = ReadSecret(ctx, secretsmanager.NewFromConfig(c), secret); err != nil {
				return Models{}, err
			}
		}
		oa, err := openai.New(openai.Config{BaseURL: base, APIKey: key})
		if err != nil {
			return Models{}, fmt.Errorf("BULKHEAD_OPENAI_BASE_URL: %w", err)
		}
		m.Providers[bulkhead.ProviderOpenAI] = oa
	}
	switch v := strings.ToLower(os.Getenv("BULKHEAD_BEDROCK")); v {
	case "", "off", "0", "false":
	case "on", "1", "true":
		c, err := awsConfig()
		if err != nil {
			return Models{}, err
		}
		m.Providers[bulkhead.ProviderBedrock] = bedrock.NewFromConfig(c)
	default:
		return Models{}, fmt.Errorf("BULKHEAD_BEDROCK=%q: want on or off", v)
	}
	return m, nil
}
