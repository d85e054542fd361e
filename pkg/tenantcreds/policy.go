package tenantcreds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// MaxPolicyLength is the most characters STS accepts in the plain text of a
// session policy (AssumeRole's Policy parameter). SessionPolicy refuses to
// build a longer one rather than let every AssumeRole fail in production.
const MaxPolicyLength = 2048

// MaxTenantIDLength is the longest tenant id a session policy can be built for.
const MaxTenantIDLength = 64

// Keys and prefixes the policy confines a session to. They must agree with
// the keys the dynamo and s3store packages build (tenantPK, tenantPrefix):
// a mismatch shows up as AccessDenied on every call, never as a wider grant.
const (
	partitionKeyPrefix = "TENANT#"
	objectKeyPrefix    = "tenants/"
)

var (
	tenantIDPattern = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	// tableARNPattern admits exactly one table: no wildcard, no policy
	// variable, no path beyond the table name.
	tableARNPattern  = regexp.MustCompile(`^arn:(aws[a-z-]*):dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}$`)
	indexNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	bucketPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	partitionPattern = regexp.MustCompile(`^aws[a-z-]*$`)
)

// Params name the resources a tenant's session may reach, and the tenant.
type Params struct {
	// TableARN is the platform table's ARN,
	// arn:<partition>:dynamodb:<region>:<account>:table/<name>.
	TableARN string
	// IndexARNs are ARNs of the table's secondary indexes the data plane
	// queries, each TableARN + "/index/<name>". The session may Query them
	// only with the tenant's partition key as the index's partition key. Empty
	// when the data plane queries no index (the case today).
	IndexARNs []string
	// Bucket is the platform bucket, as a name or as an ARN
	// (arn:<partition>:s3:::<name>). A bare name takes TableARN's partition.
	Bucket string
	// TenantID is the tenant the session is for; see ValidTenantID.
	TenantID string
}

// ValidTenantID reports whether id may appear in a session policy: 1 to 64
// characters of a-z, 0-9, "_" and "-". Anything else could change what the
// policy means: "*" and "?" are wildcards in StringLike conditions and
// resource ARNs, "/" would step out of (or into another tenant's) S3 prefix,
// "#" could name another item type's partition, "$" opens a policy variable.
func ValidTenantID(id string) bool {
	return tenantIDPattern.MatchString(id)
}

// policyDocument and statement fix the field order of the JSON, so the output
// is deterministic (Condition is a map, which encoding/json sorts by key).
type policyDocument struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                         `json:"Sid"`
	Effect    string                         `json:"Effect"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// ItemActions and ObjectActions are the one list of data actions: the
// session policy grants them per tenant, and the infrastructure grants them
// to the tenant-access role and the functions that touch the table directly.
func ItemActions() []string { return append([]string(nil), itemActions...) }

// ObjectActions are the S3 object actions a tenant session may use.
func ObjectActions() []string { return append([]string(nil), objectActions...) }

// itemActions are the DynamoDB actions a tenant session may use. There is no
// IAM action for TransactWriteItems or TransactGetItems: each item of a
// transaction is authorised as the underlying PutItem, UpdateItem, DeleteItem
// or GetItem, and a ConditionCheck as ConditionCheckItem, each with its own
// item's partition key as dynamodb:LeadingKeys. Scan and PartiQL are absent on
// purpose: a Scan has no leading key, and ForAllValues is true for an empty set.
var itemActions = []string{
	"dynamodb:BatchGetItem",
	"dynamodb:BatchWriteItem",
	"dynamodb:ConditionCheckItem",
	"dynamodb:DeleteItem",
	"dynamodb:GetItem",
	"dynamodb:PutItem",
	"dynamodb:Query",
	"dynamodb:UpdateItem",
}

// objectActions are the S3 object actions a tenant session may use.
// DeleteObjects (multi-object delete) is authorised per key as DeleteObject.
var objectActions = []string{
	"s3:DeleteObject",
	"s3:GetObject",
	"s3:PutObject",
}

// SessionPolicy returns the JSON (compact, deterministic) of an IAM session
// policy that allows only the tenant's own DynamoDB items (dynamodb:LeadingKeys
// equal to TENANT#<id>) and S3 objects (under tenants/<id>/, and listing only
// with a prefix there). Errors: Invalid for a tenant id ValidTenantID refuses;
// Internal for malformed resource names, or a policy longer than
// MaxPolicyLength (too many or too long index ARNs).
func SessionPolicy(p Params) (string, error) {
	const op = "tenantcreds.SessionPolicy"
	if !ValidTenantID(p.TenantID) {
		return "", &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "invalid tenant id"}
	}
	partition, err := p.validate()
	if err != nil {
		return "", &bulkhead.Error{Code: bulkhead.Internal, Op: op, Message: "invalid session policy parameters", Err: err}
	}
	bucketARN := "arn:" + partition + ":s3:::" + p.bucketName()
	prefix := objectKeyPrefix + p.TenantID + "/"
	leadingKeys := map[string]map[string][]string{
		"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": {partitionKeyPrefix + p.TenantID}},
	}

	doc := policyDocument{Version: "2012-10-17"}
	doc.Statement = append(doc.Statement, statement{
		Sid: "TenantItems", Effect: "Allow", Action: ItemActions(),
		Resource: []string{p.TableARN}, Condition: leadingKeys,
	})
	if len(p.IndexARNs) > 0 {
		// On an index, LeadingKeys is the index's partition key: the index
		// must be partitioned by TENANT#<id> too for this to match.
		doc.Statement = append(doc.Statement, statement{
			Sid: "TenantIndexes", Effect: "Allow", Action: []string{"dynamodb:Query"},
			Resource: p.IndexARNs, Condition: leadingKeys,
		})
	}
	doc.Statement = append(doc.Statement,
		statement{
			Sid: "TenantObjects", Effect: "Allow", Action: ObjectActions(),
			Resource: []string{bucketARN + "/" + prefix + "*"},
		},
		statement{
			// A listing without a prefix, or with another tenant's, has an
			// s3:prefix this does not match (or none at all), so it is refused.
			Sid: "TenantListing", Effect: "Allow", Action: []string{"s3:ListBucket"},
			Resource: []string{bucketARN},
			Condition: map[string]map[string][]string{
				"StringLike": {"s3:prefix": {prefix + "*", prefix}},
			},
		},
	)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return "", &bulkhead.Error{Code: bulkhead.Internal, Op: op, Message: "encode session policy", Err: err}
	}
	policy := strings.TrimSuffix(buf.String(), "\n")
	if n := utf8.RuneCountInString(policy); n > MaxPolicyLength {
		return "", &bulkhead.Error{Code: bulkhead.Internal, Op: op,
			Message: fmt.Sprintf("session policy is %d characters, more than STS accepts (%d)", n, MaxPolicyLength)}
	}
	return policy, nil
}

// validate checks the resource names and returns the ARN partition (aws,
// aws-cn, aws-us-gov ...) the bucket ARN is built in.
func (p Params) validate() (partition string, err error) {
	if !tableARNPattern.MatchString(p.TableARN) {
		return "", fmt.Errorf("table ARN %q is not arn:<partition>:dynamodb:<region>:<account>:table/<name>", p.TableARN)
	}
	partition = strings.SplitN(p.TableARN, ":", 3)[1]
	for _, idx := range p.IndexARNs {
		name, ok := strings.CutPrefix(idx, p.TableARN+"/index/")
		if !ok || !indexNamePattern.MatchString(name) {
			return "", fmt.Errorf("index ARN %q is not %s/index/<name>", idx, p.TableARN)
		}
	}
	if rest, ok := strings.CutPrefix(p.Bucket, "arn:"); ok {
		part, name, ok := strings.Cut(rest, ":s3:::")
		if !ok || !partitionPattern.MatchString(part) || !bucketPattern.MatchString(name) {
			return "", fmt.Errorf("bucket ARN %q is not arn:<partition>:s3:::<bucket>", p.Bucket)
		}
		partition = part
	} else if !bucketPattern.MatchString(p.Bucket) {
		return "", fmt.Errorf("bucket name %q is not a valid S3 bucket name", p.Bucket)
	}
	return partition, nil
}

// bucketName is the bucket's name whether Bucket holds a name or an ARN.
func (p Params) bucketName() string {
	if i := strings.LastIndex(p.Bucket, ":::"); i >= 0 {
		return p.Bucket[i+3:]
	}
	return p.Bucket
}
