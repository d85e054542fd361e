package platform

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretReader is the Secrets Manager call ReadSecret makes.
type SecretReader interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// ReadSecret reads a secret's string value (a provider's key): once per cold
// start, so the key is never in a function's environment or template. The
// value is never logged, and an error never quotes it.
func ReadSecret(ctx context.Context, sm SecretReader, id string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("read the provider key from secret %s: %w", id, err)
	}
	if out.SecretString == nil || strings.TrimSpace(*out.SecretString) == "" {
		return "", fmt.Errorf("secret %s has no string value", id)
	}
	return strings.TrimSpace(*out.SecretString), nil
}
