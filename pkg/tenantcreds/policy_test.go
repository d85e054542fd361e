package tenantcreds_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/tenantcreds"
)

const (
	testTableARN = "arn:aws:dynamodb:us-east-1:123456789012:table/bulkhead"
	testBucket   = "bulkhead-data"
)

// testParams are the resource names the tests use, for tenant tid.
func testParams(tid string) tenantcreds.Params {
	return tenantcreds.Params{TableARN: testTableARN, Bucket: testBucket, TenantID: tid}
}

// policy is the parsed shape of a session policy, as IAM reads it.
type policy struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Action    []string
		Resource  []string
		Condition map[string]map[string][]string
	}
}

func mustPolicy(tb testing.TB, p tenantcreds.Params) string {
	tb.Helper()
	s, err := tenantcreds.SessionPolicy(p)
	if err != nil {
		tb.Fatalf("SessionPolicy(%+v): %v", p, err)
	}
	return s
}

func mustParse(tb testing.TB, s string) policy {
	tb.Helper()
	var p policy
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		tb.Fatalf("parse session policy %s: %v", s, err)
	}
	return p
}

func TestSessionPolicyGolden(t *testing.T) {
	got := mustPolicy(t, testParams("tn_example"))

	golden, err := os.ReadFile("testdata/session_policy_tn_example.json")
	if err != nil {
		t.Fatal(err)
	}
	var gotDoc, wantDoc any
	if err := json.Unmarshal([]byte(got), &gotDoc); err != nil {
		t.Fatalf("SessionPolicy returned invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(golden, &wantDoc); err != nil {
		t.Fatalf("golden file: %v", err)
	}
	if !reflect.DeepEqual(gotDoc, wantDoc) {
		t.Errorf("SessionPolicy(tn_example) =\n%s\nwant (testdata/session_policy_tn_example.json)\n%s", got, golden)
	}

	// Deterministic: the same parameters give the same bytes, every time.
	for range 50 {
		if again := mustPolicy(t, testParams("tn_example")); again != got {
			t.Fatalf("SessionPolicy is not deterministic:\n%s\nthen\n%s", got, again)
		}
	}
	// Compact: whitespace would only eat into the 2,048-character limit.
	if strings.ContainsAny(got, " \n\t") {
		t.Errorf("SessionPolicy output contains whitespace, want compact JSON: %s", got)
	}
}

func TestSessionPolicyRefusesBadTenantIDs(t *testing.T) {
	tests := []struct{ name, id string }{
		{"empty", ""},
		{"star", "a*"},
		{"slash", "a/b"},
		{"partition key", "TENANT#x"},
		{"hash", "a#b"},
		{"too long", strings.Repeat("a", 65)},
		{"question mark", "a?"},
		{"upper case", "Tn_a"},
		{"policy variable", "${aws:username}"},
		{"dot dot", ".."},
		{"space", "a b"},
		{"newline", "a\n"},
		{"quote", `a"`},
		{"non-ASCII", "tn_é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tenantcreds.ValidTenantID(tt.id) {
				t.Errorf("ValidTenantID(%q) = true, want false", tt.id)
			}
			got, err := tenantcreds.SessionPolicy(testParams(tt.id))
			if !bulkhead.IsCode(err, bulkhead.Invalid) {
				t.Errorf("SessionPolicy(tenant %q) error = %v, want code %s", tt.id, err, bulkhead.Invalid)
			}
			if got != "" {
				t.Errorf("SessionPolicy(tenant %q) = %s, want no policy", tt.id, got)
			}
		})
	}
}

func TestValidTenantIDAccepts(t *testing.T) {
	for _, id := range []string{"a", "tn_example", "tn_abcdefghijklmnop", "x-y_z-0", strings.Repeat("a", 64), bulkhead.NewID("tn")} {
		if !tenantcreds.ValidTenantID(id) {
			t.Errorf("ValidTenantID(%q) = false, want true", id)
		}
	}
}

// TestSessionPolicyNamesOnlyTheTenant reads the policy as IAM would and checks
// that every grant is confined to the tenant: no wildcard except the one at
// the end of the tenant's own S3 prefix, LeadingKeys exactly TENANT#<id>, and
// no statement without its condition.
func TestSessionPolicyNamesOnlyTheTenant(t *testing.T) {
	for _, tid := range []string{"tn_example", "a", "x-y", strings.Repeat("z", 64)} {
		t.Run(tid, func(t *testing.T) {
			p := testParams(tid)
			p.IndexARNs = []string{testTableARN + "/index/by-agent"}
			doc := mustParse(t, mustPolicy(t, p))
			prefix := "tenants/" + tid + "/"

			if doc.Version != "2012-10-17" {
				t.Errorf("Version = %q, want 2012-10-17", doc.Version)
			}
			seen := map[string]bool{}
			for _, st := range doc.Statement {
				seen[st.Sid] = true
				if st.Effect != "Allow" {
					t.Errorf("%s: Effect = %q, want Allow", st.Sid, st.Effect)
				}
				for _, a := range st.Action {
					if strings.ContainsAny(a, "*?") {
						t.Errorf("%s: action %q has a wildcard", st.Sid, a)
					}
				}
				switch st.Sid {
				case "TenantItems", "TenantIndexes":
					want := map[string]map[string][]string{"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": {"TENANT#" + tid}}}
					if !reflect.DeepEqual(st.Condition, want) {
						t.Errorf("%s: Condition = %v, want %v", st.Sid, st.Condition, want)
					}
					for _, v := range st.Condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"] {
						if strings.ContainsAny(v, "*?$") {
							t.Errorf("%s: LeadingKeys value %q has a wildcard or variable", st.Sid, v)
						}
					}
					for _, r := range st.Resource {
						if strings.ContainsAny(r, "*?$") {
							t.Errorf("%s: resource %q has a wildcard or variable", st.Sid, r)
						}
					}
					for _, a := range st.Action {
						if !strings.HasPrefix(a, "dynamodb:") || a == "dynamodb:Scan" || strings.Contains(a, "PartiQL") {
							t.Errorf("%s: action %q is not a DynamoDB item action", st.Sid, a)
						}
					}
				case "TenantObjects":
					if len(st.Condition) != 0 {
						t.Errorf("%s: unexpected Condition %v", st.Sid, st.Condition)
					}
					for _, r := range st.Resource {
						if !strings.HasSuffix(r, "/"+prefix+"*") || strings.Count(r, "*") != 1 {
							t.Errorf("%s: resource %q does not end with %s* (the only wildcard)", st.Sid, r, prefix)
						}
						if r != "arn:aws:s3:::"+testBucket+"/"+prefix+"*" {
							t.Errorf("%s: resource %q is not in bucket %s", st.Sid, r, testBucket)
						}
					}
				case "TenantListing":
					if !reflect.DeepEqual(st.Action, []string{"s3:ListBucket"}) {
						t.Errorf("%s: Action = %v, want only s3:ListBucket", st.Sid, st.Action)
					}
					want := map[string]map[string][]string{"StringLike": {"s3:prefix": {prefix + "*", prefix}}}
					if !reflect.DeepEqual(st.Condition, want) {
						t.Errorf("%s: Condition = %v, want %v", st.Sid, st.Condition, want)
					}
				default:
					t.Errorf("unexpected statement %q", st.Sid)
				}
			}
			for _, sid := range []string{"TenantItems", "TenantIndexes", "TenantObjects", "TenantListing"} {
				if !seen[sid] {
					t.Errorf("statement %s missing", sid)
				}
			}
		})
	}
}

// TestSessionPolicyPrefixIsNotSharedWithLongerIDs checks the case a trailing
// slash exists for: tenant "a"'s grants must not match tenant "ab"'s keys.
func TestSessionPolicyPrefixIsNotSharedWithLongerIDs(t *testing.T) {
	doc := mustParse(t, mustPolicy(t, testParams("a")))
	for _, st := range doc.Statement {
		for _, r := range st.Resource {
			if strings.Contains(r, "tenants/a") && !strings.Contains(r, "tenants/a/") {
				t.Errorf("%s: resource %q would also match tenant ab", st.Sid, r)
			}
		}
		for _, vals := range st.Condition {
			for _, vs := range vals {
				for _, v := range vs {
					if strings.HasPrefix(v, "tenants/") && !strings.HasPrefix(v, "tenants/a/") {
						t.Errorf("%s: condition value %q would also match tenant ab", st.Sid, v)
					}
				}
			}
		}
	}
}

func TestSessionPolicyIndexes(t *testing.T) {
	p := testParams("tn_example")
	p.IndexARNs = []string{testTableARN + "/index/gsi1", testTableARN + "/index/gsi2"}
	doc := mustParse(t, mustPolicy(t, p))
	for _, st := range doc.Statement {
		if st.Sid != "TenantIndexes" {
			continue
		}
		if !reflect.DeepEqual(st.Action, []string{"dynamodb:Query"}) {
			t.Errorf("TenantIndexes: Action = %v, want only dynamodb:Query", st.Action)
		}
		if !reflect.DeepEqual(st.Resource, p.IndexARNs) {
			t.Errorf("TenantIndexes: Resource = %v, want %v", st.Resource, p.IndexARNs)
		}
		return
	}
	t.Errorf("no TenantIndexes statement in a policy with index ARNs")
}

func TestSessionPolicyPartitions(t *testing.T) {
	tests := []struct {
		name, table, bucket, wantBucketARN string
	}{
		{"bucket name takes the table's partition", "arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/bulkhead", "bulkhead-data", "arn:aws-us-gov:s3:::bulkhead-data"},
		{"bucket ARN", "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/bulkhead", "arn:aws-cn:s3:::bulkhead-data", "arn:aws-cn:s3:::bulkhead-data"},
		{"bucket with dots", testTableARN, "data.bulkhead.example", "arn:aws:s3:::data.bulkhead.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := mustParse(t, mustPolicy(t, tenantcreds.Params{TableARN: tt.table, Bucket: tt.bucket, TenantID: "tn_a"}))
			for _, st := range doc.Statement {
				switch st.Sid {
				case "TenantListing":
					if got := st.Resource; len(got) != 1 || got[0] != tt.wantBucketARN {
						t.Errorf("TenantListing: Resource = %v, want [%s]", got, tt.wantBucketARN)
					}
				case "TenantObjects":
					if got, want := st.Resource, tt.wantBucketARN+"/tenants/tn_a/*"; len(got) != 1 || got[0] != want {
						t.Errorf("TenantObjects: Resource = %v, want [%s]", got, want)
					}
				}
			}
		})
	}
}

func TestSessionPolicyRefusesBadResources(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*tenantcreds.Params)
		wantErr bulkhead.Code
	}{
		{"empty table", func(p *tenantcreds.Params) { p.TableARN = "" }, bulkhead.Internal},
		{"table name only", func(p *tenantcreds.Params) { p.TableARN = "bulkhead" }, bulkhead.Internal},
		{"wildcard table", func(p *tenantcreds.Params) { p.TableARN = "arn:aws:dynamodb:us-east-1:123456789012:table/*" }, bulkhead.Internal},
		{"wildcard account", func(p *tenantcreds.Params) { p.TableARN = "arn:aws:dynamodb:us-east-1:*:table/bulkhead" }, bulkhead.Internal},
		{"table with a path", func(p *tenantcreds.Params) { p.TableARN = testTableARN + "/index/x" }, bulkhead.Internal},
		{"index of another table", func(p *tenantcreds.Params) {
			p.IndexARNs = []string{"arn:aws:dynamodb:us-east-1:123456789012:table/other/index/gsi1"}
		}, bulkhead.Internal},
		{"wildcard index", func(p *tenantcreds.Params) { p.IndexARNs = []string{testTableARN + "/index/*"} }, bulkhead.Internal},
		{"empty bucket", func(p *tenantcreds.Params) { p.Bucket = "" }, bulkhead.Internal},
		{"wildcard bucket", func(p *tenantcreds.Params) { p.Bucket = "*" }, bulkhead.Internal},
		{"bucket with a key", func(p *tenantcreds.Params) { p.Bucket = "bulkhead-data/tenants" }, bulkhead.Internal},
		{"bucket ARN with a key", func(p *tenantcreds.Params) { p.Bucket = "arn:aws:s3:::bulkhead-data/*" }, bulkhead.Internal},
		{"not an S3 ARN", func(p *tenantcreds.Params) { p.Bucket = "arn:aws:dynamodb:::bulkhead-data" }, bulkhead.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testParams("tn_a")
			tt.mutate(&p)
			got, err := tenantcreds.SessionPolicy(p)
			if !bulkhead.IsCode(err, tt.wantErr) {
				t.Errorf("SessionPolicy(%+v) error = %v, want code %s", p, err, tt.wantErr)
			}
			if got != "" {
				t.Errorf("SessionPolicy(%+v) = %s, want no policy", p, got)
			}
		})
	}
}

// TestSessionPolicySize checks the policy stays under the 2,048 characters STS
// accepts for the longest tenant id and generous resource names, and that a
// configuration that cannot fit is refused rather than sent.
func TestSessionPolicySize(t *testing.T) {
	longID := strings.Repeat("t", tenantcreds.MaxTenantIDLength)
	if !tenantcreds.ValidTenantID(longID) {
		t.Fatalf("ValidTenantID(%d chars) = false", len(longID))
	}
	longTable := "arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/" + strings.Repeat("b", 64)
	tests := []struct {
		name string
		p    tenantcreds.Params
	}{
		{"the platform's names", testParams(longID)},
		{"long table and bucket names", tenantcreds.Params{TableARN: longTable, Bucket: strings.Repeat("d", 63), TenantID: longID}},
		{"longest table name", tenantcreds.Params{TableARN: "arn:aws:dynamodb:ap-southeast-2:123456789012:table/" + strings.Repeat("b", 255), Bucket: strings.Repeat("d", 63), TenantID: longID}},
		{"two indexes", tenantcreds.Params{TableARN: longTable, Bucket: strings.Repeat("d", 63), TenantID: longID,
			IndexARNs: []string{longTable + "/index/" + strings.Repeat("i", 32), longTable + "/index/" + strings.Repeat("j", 32)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustPolicy(t, tt.p)
			if n := len([]rune(s)); n > tenantcreds.MaxPolicyLength {
				t.Errorf("policy is %d characters, want at most %d", n, tenantcreds.MaxPolicyLength)
			} else {
				t.Logf("policy is %d characters (limit %d)", n, tenantcreds.MaxPolicyLength)
			}
		})
	}

	t.Run("too many indexes", func(t *testing.T) {
		p := testParams(longID)
		for i := range 30 {
			p.IndexARNs = append(p.IndexARNs, testTableARN+"/index/"+strings.Repeat(string(rune('a'+i%26)), 40))
		}
		got, err := tenantcreds.SessionPolicy(p)
		if !bulkhead.IsCode(err, bulkhead.Internal) || !regexp.MustCompile(`\d+ characters`).MatchString(err.Error()) {
			t.Errorf("SessionPolicy(30 long indexes) error = %v, want an Internal error giving the size", err)
		}
		if got != "" {
			t.Errorf("SessionPolicy(30 long indexes) returned a %d-character policy, want none", len(got))
		}
	})
}

func TestSessionName(t *testing.T) {
	valid := regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	if got, want := tenantcreds.SessionName("tn_example"), "bulkhead-tn_example"; got != want {
		t.Errorf("SessionName(tn_example) = %q, want %q", got, want)
	}
	a := tenantcreds.SessionName(strings.Repeat("a", 63) + "1")
	b := tenantcreds.SessionName(strings.Repeat("a", 63) + "2")
	for _, name := range []string{a, b, tenantcreds.SessionName(strings.Repeat("a", 55))} {
		if !valid.MatchString(name) {
			t.Errorf("SessionName = %q (%d chars), want 2-64 characters of [\\w+=,.@-]", name, len(name))
		}
	}
	if a == b {
		t.Errorf("two 64-character tenant ids differing in the last character share the session name %q", a)
	}
}
