package platform_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/bulkhead-dev/bulkhead/pkg/awsfake"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

// fakeSecrets is Secrets Manager's GetSecretValue at the wire level (the
// JSON 1.1 protocol, X-Amz-Target, SigV4 checked), for the real SDK client.
func fakeSecrets(t *testing.T, secrets map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		creds := awsfake.Credentials{AccessKey: "AKID", SecretKey: "secret", Region: "us-east-1", Service: "secretsmanager"}
		if typ, msg := awsfake.VerifySigV4(r, body, creds); typ != "" {
			w.Header().Set("X-Amzn-ErrorType", typ)
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
			return
		}
		var in struct{ SecretId string }
		if err := json.Unmarshal(body, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v, ok := secrets[in.SecretId]
		if !ok {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + in.SecretId, "Name": in.SecretId, "SecretString": v})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestReadSecret(t *testing.T) {
	srv := fakeSecrets(t, map[string]string{"bulkhead/openai": "sk-live-key\n", "empty": ""})
	sm := secretsmanager.NewFromConfig(aws.Config{Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
	})
	ctx := context.Background()
	if got, err := platform.ReadSecret(ctx, sm, "bulkhead/openai"); err != nil || got != "sk-live-key" {
		t.Errorf("ReadSecret = %q, %v; want the trimmed key", got, err)
	}
	for _, id := range []string{"missing", "empty"} {
		if _, err := platform.ReadSecret(ctx, sm, id); err == nil || !strings.Contains(err.Error(), id) {
			t.Errorf("secret %q: %v, want an error naming it", id, err)
		}
	}
}
