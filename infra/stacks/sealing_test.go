//go:build infra

package stacks_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/infra/stacks"
	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// TestSealingKey: one rotating KMS key seals tenant tool secrets, kept with
// the data. The agents function may generate data keys and decrypt them, the
// execute function only decrypt them, each only with a tenant in the
// encryption context; no other function may use the key. Both know its ARN.
func TestSealingKey(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		keyID, key := s.only(t, "AWS::KMS::Key")
		if key.Properties["EnableKeyRotation"] != true {
			t.Errorf("key rotation %v, want true", key.Properties["EnableKeyRotation"])
		}
		if key.DeletionPolicy != "Retain" || key.UpdateReplace != "Retain" {
			t.Errorf("key DeletionPolicy %q, UpdateReplacePolicy %q; want Retain", key.DeletionPolicy, key.UpdateReplace)
		}
		keyARN := "<" + keyID + ".Arn>"
		want := map[string][]string{
			api.FnAgents:  {"kms:Decrypt", "kms:GenerateDataKey"},
			api.FnExecute: {"kms:Decrypt"},
		}
		for _, name := range stacks.FunctionNames() {
			id := s.functionID(t, name)
			var actions []string
			for _, st := range s.statements(s.roleOf(t, id)) {
				var kms []string
				for _, a := range strs(st["Action"]) {
					if strings.HasPrefix(a, "kms:") {
						kms = append(kms, a)
					}
				}
				if len(kms) == 0 {
					continue
				}
				if res := strs(st["Resource"]); !slices.Equal(res, []string{keyARN}) {
					t.Errorf("%s: KMS actions on %v, want the sealing key only", name, res)
				}
				if got := render(st["Condition"]); got != `{"StringLike":{"kms:EncryptionContext:tenant_id":"?*"}}` {
					t.Errorf("%s: KMS condition %s, want a tenant in the encryption context", name, got)
				}
				actions = append(actions, kms...)
			}
			slices.Sort(actions)
			if !slices.Equal(actions, want[name]) {
				t.Errorf("%s: KMS actions %v, want %v", name, actions, want[name])
			}
			env := s.res[id].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
			got, set := env[stacks.EnvSealingKeyID]
			if _, sealing := want[name]; sealing != set || (set && render(got) != keyARN) {
				t.Errorf("%s: %s = %v", name, stacks.EnvSealingKeyID, render(got))
			}
		}
	})

	stacksUnderTest(t)
	_, key := fixture.disposable.only(t, "AWS::KMS::Key")
	if key.DeletionPolicy != "Delete" {
		t.Errorf("with destroyData the key's DeletionPolicy is %q, want Delete", key.DeletionPolicy)
	}
}
