//go:build infra

package stacks_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/infra/stacks"
)

// CloudFront's managed policies, by id.
const (
	cachingOptimized          = "658327ea-f89d-4fab-a63d-7e88639e58f6"
	cachingDisabled           = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
	allViewerExceptHostHeader = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
)

// rawJSON is a CloudFormation value as compact JSON, for values render does
// not flatten (Fn::Select, Fn::Split).
func rawJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// prefixed returns the single resource of a type whose logical id starts with prefix.
func (s *synthesized) prefixed(t *testing.T, typ, prefix string) (string, resource) {
	t.Helper()
	var ids []string
	for _, id := range s.ofType(typ) {
		if strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d %s resources named %s*, want 1: %v", len(ids), typ, prefix, ids)
	}
	return ids[0], s.res[ids[0]]
}

// TestPortal: the portal's files from a private bucket through CloudFront
// (origin access control), the API's paths to the REST API's stage on the
// same origin, security headers on the files, logs, the deployment of the
// files and the URL output.
func TestPortal(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		_, dist := s.only(t, "AWS::CloudFront::Distribution")
		cfg := dist.Properties["DistributionConfig"].(map[string]any)
		bucket, _ := s.prefixed(t, "AWS::S3::Bucket", "PlatformPortalBucket")
		logBucket, _ := s.prefixed(t, "AWS::S3::Bucket", "PlatformAccessLogBucket")
		api, _ := s.only(t, "AWS::ApiGateway::RestApi")
		stage, _ := s.only(t, "AWS::ApiGateway::Stage")

		if cfg["DefaultRootObject"] != "index.html" || cfg["Enabled"] != true {
			t.Errorf("DefaultRootObject %v, Enabled %v; want index.html, true", cfg["DefaultRootObject"], cfg["Enabled"])
		}
		if got := render(cfg["Logging"]); got != `{"Bucket":"<`+logBucket+`.RegionalDomainName>","Prefix":"portal-distribution/"}` {
			t.Errorf("Logging %s, want the access-log bucket under portal-distribution/", got)
		}
		if cfg["ViewerCertificate"] != nil || cfg["Aliases"] != nil {
			t.Errorf("ViewerCertificate %v, Aliases %v; want CloudFront's default certificate and domain", cfg["ViewerCertificate"], cfg["Aliases"])
		}

		// Origins: the portal bucket through OAC, the API's stage over HTTPS.
		var s3Origin, apiOrigin map[string]any
		for _, o := range cfg["Origins"].([]any) {
			o := o.(map[string]any)
			switch {
			case render(o["DomainName"]) == "<"+bucket+".RegionalDomainName>":
				s3Origin = o
			case strings.Contains(rawJSON(t, o["DomainName"]), `{"Ref":"`+api+`"},".execute-api."`):
				apiOrigin = o
			default:
				t.Errorf("unexpected origin %s", rawJSON(t, o))
			}
		}
		if s3Origin == nil || apiOrigin == nil {
			t.Fatalf("origins %s: want the portal bucket and the API", rawJSON(t, cfg["Origins"]))
		}
		oacID, oac := s.only(t, "AWS::CloudFront::OriginAccessControl")
		if got := render(s3Origin["OriginAccessControlId"]); got != "<"+oacID+".Id>" {
			t.Errorf("bucket origin's OriginAccessControlId %s, want <%s.Id>", got, oacID)
		}
		if got := render(s3Origin["S3OriginConfig"]); got != `{"OriginAccessIdentity":""}` {
			t.Errorf("bucket origin S3OriginConfig %s, want no origin access identity", got)
		}
		if got := render(oac.Properties["OriginAccessControlConfig"]); !strings.Contains(got, `"OriginAccessControlOriginType":"s3","SigningBehavior":"always","SigningProtocol":"sigv4"`) {
			t.Errorf("origin access control %s, want s3, always, sigv4", got)
		}
		if n := len(s.ofType("AWS::CloudFront::CloudFrontOriginAccessIdentity")); n != 0 {
			t.Errorf("%d legacy origin access identities, want none", n)
		}
		if got := render(apiOrigin["CustomOriginConfig"]); got != `{"OriginProtocolPolicy":"https-only","OriginReadTimeout":60,"OriginSSLProtocols":["TLSv1.2"]}` {
			t.Errorf("API origin config %s", got)
		}
		// The stage name, picked from the stage's URL, is the origin path.
		if got := rawJSON(t, apiOrigin["OriginPath"]); !strings.HasPrefix(got, `{"Fn::Join":["",["/",{"Fn::Select":[3,`) || !strings.Contains(got, `{"Ref":"`+stage+`"}`) {
			t.Errorf("API origin path %s, want /<stage>", got)
		}

		// The default behaviour: the files, HTTPS, cached, with the headers.
		headersID, headers := s.only(t, "AWS::CloudFront::ResponseHeadersPolicy")
		def := cfg["DefaultCacheBehavior"].(map[string]any)
		for k, want := range map[string]string{
			"TargetOriginId":          render(s3Origin["Id"]),
			"ViewerProtocolPolicy":    "redirect-to-https",
			"AllowedMethods":          "GET,HEAD",
			"CachePolicyId":           cachingOptimized,
			"ResponseHeadersPolicyId": "<" + headersID + ">",
			"Compress":                "true",
		} {
			if got := render(def[k]); got != want {
				t.Errorf("default behaviour %s = %s, want %s", k, got, want)
			}
		}

		// The API's paths: its origin, no cache, every method, every viewer
		// header but Host.
		var paths []string
		for _, b := range cfg["CacheBehaviors"].([]any) {
			b := b.(map[string]any)
			path := render(b["PathPattern"])
			paths = append(paths, path)
			for k, want := range map[string]string{
				"TargetOriginId":        render(apiOrigin["Id"]),
				"ViewerProtocolPolicy":  "https-only",
				"AllowedMethods":        "GET,HEAD,OPTIONS,PUT,PATCH,POST,DELETE",
				"CachePolicyId":         cachingDisabled,
				"OriginRequestPolicyId": allViewerExceptHostHeader,
			} {
				if got := render(b[k]); got != want {
					t.Errorf("behaviour %s: %s = %s, want %s", path, k, got, want)
				}
			}
		}
		want := stacks.PortalAPIPaths()
		slices.Sort(paths)
		slices.Sort(want)
		if !slices.Equal(paths, want) {
			t.Errorf("behaviours %v, want %v", paths, want)
		}
		if !slices.Contains(want, "/v1/*") || !slices.Contains(want, "/docs/*") {
			t.Errorf("PortalAPIPaths %v: want /v1/* and /docs/*", want)
		}

		// The security headers.
		sh := headers.Properties["ResponseHeadersPolicyConfig"].(map[string]any)["SecurityHeadersConfig"].(map[string]any)
		for k, want := range map[string]string{
			"ContentSecurityPolicy":   `{"ContentSecurityPolicy":"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'","Override":true}`,
			"StrictTransportSecurity": `{"AccessControlMaxAgeSec":31536000,"IncludeSubdomains":true,"Override":true}`,
			"ContentTypeOptions":      `{"Override":true}`,
			"ReferrerPolicy":          `{"Override":true,"ReferrerPolicy":"no-referrer"}`,
			"FrameOptions":            `{"FrameOption":"DENY","Override":true}`,
		} {
			if got := render(sh[k]); got != want {
				t.Errorf("header %s = %s, want %s", k, got, want)
			}
		}
		if stacks.PortalContentSecurityPolicy != "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" {
			t.Errorf("PortalContentSecurityPolicy %q", stacks.PortalContentSecurityPolicy)
		}

		// The bucket: private (TestBuckets checks the public access block,
		// encryption and TLS), readable by this distribution only.
		var policy string
		for _, pid := range s.ofType("AWS::S3::BucketPolicy") {
			if render(s.res[pid].Properties["Bucket"]) == "<"+bucket+">" {
				policy = render(s.res[pid].Properties["PolicyDocument"])
			}
		}
		distID, _ := s.only(t, "AWS::CloudFront::Distribution")
		if !strings.Contains(policy, `"Action":"s3:GetObject","Condition":{"StringEquals":{"AWS:SourceArn":"arn:<AWS::Partition>:cloudfront::<AWS::AccountId>:distribution/<`+distID+`>"}},"Effect":"Allow","Principal":{"Service":"cloudfront.amazonaws.com"}`) {
			t.Errorf("portal bucket policy %s: want GetObject for this distribution only", policy)
		}
		if strings.Contains(policy, `"Principal":{"AWS":"*"},"Effect":"Allow"`) || strings.Contains(policy, `"Effect":"Allow","Principal":{"AWS":"*"}`) {
			t.Errorf("portal bucket policy %s is public", policy)
		}
		if logs := render(s.res[bucket].Properties["LoggingConfiguration"]); !strings.Contains(logs, "<"+logBucket+">") {
			t.Errorf("portal bucket logging %s, want the access-log bucket", logs)
		}
		// CloudFront's standard logs need ACLs on the log bucket.
		if got := render(s.res[logBucket].Properties["OwnershipControls"]); got != `{"Rules":[{"ObjectOwnership":"BucketOwnerPreferred"}]}` {
			t.Errorf("access-log bucket ownership %s, want BucketOwnerPreferred", got)
		}

		// The deployment: the portal directory as an asset, to the portal
		// bucket, pruned, the distribution invalidated.
		_, dep := s.only(t, "Custom::CDKBucketDeployment")
		p := dep.Properties
		if got := render(p["DestinationBucketName"]); got != "<"+bucket+">" {
			t.Errorf("deployment destination %s, want the portal bucket", got)
		}
		if p["Prune"] != true || render(p["DistributionId"]) != "<"+distID+">" || render(p["DistributionPaths"]) != "/*" {
			t.Errorf("deployment Prune %v, DistributionId %s, DistributionPaths %s; want true, the distribution, /*",
				p["Prune"], render(p["DistributionId"]), render(p["DistributionPaths"]))
		}
		if p["RetainOnDelete"] != true {
			t.Errorf("deployment RetainOnDelete %v, want true (the bucket is retained)", p["RetainOnDelete"])
		}
		keys := strs(p["SourceObjectKeys"])
		if len(keys) != 1 || !strings.HasSuffix(keys[0], ".zip") {
			t.Fatalf("deployment sources %v, want one zipped asset", keys)
		}
		staged := filepath.Join(fixture.dir, "cdk.out", "asset."+strings.TrimSuffix(keys[0], ".zip"))
		for _, name := range []string{"index.html", "app.js", "app.css"} {
			got, err := os.ReadFile(filepath.Join(staged, name))
			if err != nil {
				t.Errorf("the deployment's asset has no %s: %v", name, err)
				continue
			}
			src, _ := os.ReadFile(filepath.Join(fixture.dir, "portal", name))
			if string(got) != string(src) {
				t.Errorf("the deployment's %s is not the portal directory's", name)
			}
		}
		// Its handler: a role without managed policy, logs with a retention.
		var handler resource
		for _, id := range s.ofType("AWS::Lambda::Function") {
			if strings.HasPrefix(id, "CustomCDKBucketDeployment") {
				handler = s.res[id]
			}
		}
		role := strings.TrimSuffix(strings.TrimPrefix(render(handler.Properties["Role"]), "<"), ".Arn>")
		if !strings.HasPrefix(role, "PlatformPortalDeploymentRole") || s.res[role].Properties["ManagedPolicyArns"] != nil {
			t.Errorf("deployment handler role %s (managed policies %v), want PlatformPortalDeploymentRole without", role, s.res[role].Properties["ManagedPolicyArns"])
		}
		if lg := render(handler.Properties["LoggingConfig"]); !strings.Contains(lg, "<PlatformPortalDeploymentLogs") {
			t.Errorf("deployment handler logs to %s, want PlatformPortalDeploymentLogs", lg)
		}

		// The URL output.
		out := s.template.ToJSON()
		outputs, _ := (*out)["Outputs"].(map[string]any)
		url, _ := outputs[stacks.PortalURLOutput].(map[string]any)
		if got := render(url["Value"]); got != "https://<"+distID+".DomainName>" {
			t.Errorf("output %s = %s, want https://<%s.DomainName>", stacks.PortalURLOutput, got, distID)
		}
	})
}

// TestPortalDestroyData: with destroyData the portal's files go with the
// stack, so that its bucket can.
func TestPortalDestroyData(t *testing.T) {
	stacksUnderTest(t)
	s := fixture.disposable
	_, dep := s.only(t, "Custom::CDKBucketDeployment")
	if dep.Properties["RetainOnDelete"] != false {
		t.Errorf("RetainOnDelete %v, want false", dep.Properties["RetainOnDelete"])
	}
}
