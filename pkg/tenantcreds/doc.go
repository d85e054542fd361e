// Package tenantcreds gives data-plane functions AWS credentials that can reach
// only one tenant's data: DynamoDB items under the partition key TENANT#<id> and
// S3 objects under tenants/<id>/.
//
// It is the IAM layer of the design's isolation (DESIGN.md, "Isolation, in
// layers", item 3). The store already binds every call to one tenant; these
// credentials make AWS refuse a call that names another tenant's partition or
// prefix anyway, so a bug in the store cannot turn into a cross-tenant read.
//
// A Provider assumes one IAM role with STS AssumeRole, passing a session
// policy built by SessionPolicy for the tenant. The effective permissions of
// the session are the intersection of the role's own policy and the session
// policy, so the role may be granted the whole table and bucket while each
// session is confined to one tenant. Credentials are cached per tenant in the
// process (a Lambda container), refreshed before they expire, and the cache
// holds a bounded number of tenants, evicting the least recently used.
//
// What the deployment must provide: a role (the "tenant data role") whose
// trust policy lets the data-plane functions' execution roles call
// sts:AssumeRole and sts:TagSession (each session carries the tag
// tenant_id=<id>), and whose own policy allows the same actions on the table
// and bucket (it may itself use aws:PrincipalTag/tenant_id to confine
// sessions a second time); the execution roles need sts:AssumeRole and
// sts:TagSession on that role. Calls outside a tenant's partition (the API
// key lookup, the operator's indexes) cannot be made with these credentials.
//
// The local platform and the embedded servers ignore IAM: a Provider built
// with an empty role ARN (or Static) is in static mode, and its ForTenant
// returns nil, meaning "use the client's own credentials".
package tenantcreds
