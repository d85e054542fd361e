package stacks

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/jsii-runtime-go"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// MetricsNamespace is where the functions' Embedded Metric Format metrics
// land. They carry no tenant dimension (a metric per tenant costs money per
// tenant); tenant_id is an EMF property, which the Contributor Insights rules
// rank.
const MetricsNamespace = "Bulkhead"

// The application metrics the dashboard and the alarms read.
const (
	MetricTokens          = "Tokens"
	MetricSpend           = "Spend"
	MetricExecutions      = "Executions"
	MetricQuotaViolations = "QuotaViolations"
	// MetricTokensOverReserved counts tokens a model reported beyond its
	// execution's reservation; any at all means the input bound failed.
	MetricTokensOverReserved = "TokensOverReserved"
)

// Alarm thresholds, per 5 minutes.
const (
	api5xxRatePercent       = 5
	lambdaErrorsThreshold   = 5
	lambdaThrottleThreshold = 5
	tableThrottleThreshold  = 25
	quotaViolationSpike     = 500
	tenantErrorSpike        = 50
)

// Names of the Contributor Insights rules (suffixes of the stack's name).
const (
	RuleRequestsByTenant = "requests-by-tenant"
	RuleTokensByTenant   = "tokens-by-tenant"
	RuleErrorsByTenant   = "errors-by-tenant"
)

// Names of the Logs Insights saved queries (after the stack's name and a
// slash, which the console shows as a folder).
const (
	QueryTenantErrors    = "one tenant's errors"
	QueryTopTenantsSpend = "top tenants by spend this hour"
)

// QueryTenantPlaceholder is the tenant id in the tenant's-errors query, which
// the operator replaces before running it.
const QueryTenantPlaceholder = "tn_REPLACE_ME"

// The saved queries' text. The functions log JSON (log/slog): every request
// as msg "request" with request_id, route, function, status, duration_ms and,
// on tenant routes, tenant_id; a 5XX answer also as level ERROR, msg "request
// failed" with code and error. The execute function's EMF line of a settled
// execution carries Spend (USD), Tokens and Executions, with tenant_id a
// property.
const (
	QueryTenantErrorsString = "# One tenant's server errors, newest first: replace " + QueryTenantPlaceholder + " with the tenant's id.\n" +
		"fields @timestamp, function, route, status, request_id, level, msg, code, error\n" +
		"| filter tenant_id = \"" + QueryTenantPlaceholder + "\"\n" +
		"| filter (msg = \"request\" and status >= 500) or level = \"ERROR\"\n" +
		"| sort @timestamp desc\n" +
		"| limit 200"
	QueryTopTenantsSpendString = "# Top tenants by spend over the console's time range: set it to the hour you want (1h for the last one).\n" +
		"# From the execute function's EMF lines, one per settled execution; Spend is in USD.\n" +
		"filter ispresent(" + MetricSpend + ")\n" +
		"| stats sum(" + MetricSpend + ") as spend_usd, sum(" + MetricTokens + ") as tokens, sum(" + MetricExecutions + ") as executions by tenant_id\n" +
		"| sort spend_usd desc\n" +
		"| limit 20"
)

func fiveMinutes() awscdk.Duration { return awscdk.Duration_Minutes(jsii.Number(5)) }

// camel turns "errors-by-tenant" into "ErrorsByTenant".
func camel(s string) string {
	var b strings.Builder
	for _, w := range strings.Split(s, "-") {
		b.WriteString(exportName(w))
	}
	return b.String()
}

// sortedKeys returns a map's keys in order, for a deterministic template.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// observability creates the Contributor Insights rules, the alarms (to an SNS
// topic), the dashboard and the Logs Insights saved queries.
func (p *Platform) observability() {
	p.insightRules()
	p.alarms()
	p.dashboard()
	p.savedQueries()
}

// savedQueries saves two Logs Insights queries, named "<stack>/<query>":
// one tenant's server errors over every function's log group, and the top
// tenants by spend over the execute function's (the only one that emits
// Spend). They are L1 resources: the L2 QueryString builder cannot write the
// comments the queries carry.
func (p *Platform) savedQueries() {
	var all []any
	for _, name := range FunctionNames() {
		all = append(all, p.LogGroups[name].LogGroupName())
	}
	queries := []struct {
		id, name, query string
		groups          []any
	}{
		{"QueryTenantErrors", QueryTenantErrors, QueryTenantErrorsString, all},
		{"QueryTopTenantsSpend", QueryTopTenantsSpend, QueryTopTenantsSpendString, []any{p.LogGroups[api.FnExecute].LogGroupName()}},
	}
	for _, q := range queries {
		groups := q.groups
		p.Queries[q.name] = awslogs.NewCfnQueryDefinition(p.Construct, jsii.String(q.id), &awslogs.CfnQueryDefinitionProps{
			Name:          jsii.String(*p.stack.StackName() + "/" + q.name),
			QueryLanguage: jsii.String("CWLI"),
			QueryString:   jsii.String(q.query),
			LogGroupNames: &groups,
		})
	}
}

// insightRules ranks tenants without a metric per tenant. Requests and server
// errors come from the API's access log (it sees every request, also those
// API Gateway refuses); tokens from the execute function's EMF lines.
func (p *Platform) insightRules() {
	notAnonymous := map[string]any{"Match": "$.tenant_id", "NotIn": []string{"-", ""}}
	rules := []struct {
		suffix string
		groups []*string
		body   map[string]any
	}{
		{RuleRequestsByTenant, []*string{p.AccessLogs.LogGroupName()}, map[string]any{
			"Keys": []string{"$.tenant_id"}, "Filters": []any{notAnonymous},
		}},
		{RuleErrorsByTenant, []*string{p.AccessLogs.LogGroupName()}, map[string]any{
			"Keys": []string{"$.tenant_id"}, "Filters": []any{notAnonymous, map[string]any{"Match": "$.status", "GreaterThan": 499}},
		}},
		{RuleTokensByTenant, []*string{p.LogGroups[api.FnExecute].LogGroupName()}, map[string]any{
			"Keys": []string{"$.tenant_id"}, "ValueOf": "$." + MetricTokens,
			"Filters": []any{map[string]any{"Match": "$." + MetricTokens, "IsPresent": true}},
		}},
	}
	for _, r := range rules {
		aggregate := "Count"
		if _, ok := r.body["ValueOf"]; ok {
			aggregate = "Sum"
		}
		body := map[string]any{
			"Schema":        map[string]any{"Name": "CloudWatchLogRule", "Version": 1},
			"LogGroupNames": r.groups,
			"LogFormat":     "JSON",
			"Contribution":  r.body,
			"AggregateOn":   aggregate,
		}
		p.InsightRules[r.suffix] = awscloudwatch.NewCfnInsightRule(p.Construct, jsii.String("Insight"+camel(r.suffix)), &awscloudwatch.CfnInsightRuleProps{
			RuleName:  jsii.String(p.name(r.suffix)),
			RuleState: jsii.String("ENABLED"),
			RuleBody:  p.stack.ToJsonString(body, nil),
		})
	}
}

// insightMetric is a Contributor Insights rule's metric: "UniqueContributors",
// "MaxContributorValue", "SampleCount" or "Sum".
func (p *Platform) insightMetric(rule, metric, label string) awscloudwatch.MathExpression {
	// The rule's name by reference, so that CloudFormation creates the rule
	// before the alarms and the dashboard that read it.
	name := p.InsightRules[rule].AttrRuleName()
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("INSIGHT_RULE_METRIC('"), name, jsii.String("', '" + metric + "')")}),
		UsingMetrics: &map[string]awscloudwatch.IMetric{},
		Label:        jsii.String(label),
		Period:       fiveMinutes(),
	})
}

// appMetric is one of the functions' EMF metrics, summed over 5 minutes.
func appMetric(name string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(MetricsNamespace), MetricName: jsii.String(name),
		Statistic: jsii.String("Sum"), Period: fiveMinutes(),
	})
}

func sum() *awscloudwatch.MetricOptions {
	return &awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: fiveMinutes()}
}

// api5xxRate is the percentage of requests answered 5XX.
func (p *Platform) api5xxRate() awscloudwatch.MathExpression {
	stage := p.API.DeploymentStage()
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("IF(requests > 0, 100 * serverErrors / requests, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"requests":     stage.MetricCount(sum()),
			"serverErrors": stage.MetricServerError(sum()),
		},
		Label:  jsii.String("5XX rate (%)"),
		Period: fiveMinutes(),
	})
}

// api4xxRate is the percentage of requests answered 4XX.
func (p *Platform) api4xxRate() awscloudwatch.MathExpression {
	stage := p.API.DeploymentStage()
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("IF(requests > 0, 100 * clientErrors / requests, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"requests":     stage.MetricCount(sum()),
			"clientErrors": stage.MetricClientError(sum()),
		},
		Label:  jsii.String("4XX rate (%)"),
		Period: fiveMinutes(),
	})
}

// tableThrottles adds up the table's read and write throttle events.
func (p *Platform) tableThrottles() awscloudwatch.MathExpression {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("FILL(reads, 0) + FILL(writes, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"reads":  p.Table.Metric(jsii.String("ReadThrottleEvents"), sum()),
			"writes": p.Table.Metric(jsii.String("WriteThrottleEvents"), sum()),
		},
		Label:  jsii.String("DynamoDB throttle events"),
		Period: fiveMinutes(),
	})
}

// alarms watches the platform as a whole, each function, the table, the
// quota refusals and the worst tenant's server errors.
func (p *Platform) alarms() {
	p.AlarmTopic = awssns.NewTopic(p.Construct, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String(*p.stack.StackName() + " alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	if p.props.AlarmEmail != "" {
		p.AlarmTopic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(p.props.AlarmEmail), nil))
	}
	action := awscloudwatchactions.NewSnsAction(p.AlarmTopic)
	add := func(id, description string, metric awscloudwatch.IMetric, threshold float64, periods float64) {
		a := awscloudwatch.NewAlarm(p.Construct, jsii.String("Alarm"+id), &awscloudwatch.AlarmProps{
			AlarmName:          jsii.String(p.name(id)),
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(periods),
			DatapointsToAlarm:  jsii.Number(periods),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
		p.Alarms[id] = a
	}

	add("Api5xxRate", fmt.Sprintf("At least %d%% of API requests answered 5XX, two 5-minute periods in a row", api5xxRatePercent),
		p.api5xxRate(), api5xxRatePercent, 2)
	for _, name := range FunctionNames() {
		fn := p.Functions[name]
		add(exportName(name)+"Errors", fmt.Sprintf("The %s function failed at least %d invocations in 5 minutes", name, lambdaErrorsThreshold),
			fn.MetricErrors(sum()), lambdaErrorsThreshold, 1)
		add(exportName(name)+"Throttles", fmt.Sprintf("The %s function was throttled at least %d times in 5 minutes (account or reserved concurrency exhausted)", name, lambdaThrottleThreshold),
			fn.MetricThrottles(sum()), lambdaThrottleThreshold, 1)
	}
	add("TableThrottles", fmt.Sprintf("DynamoDB throttled at least %d requests in 5 minutes: a tenant is past one partition's throughput (see the table's Contributor Insights)", tableThrottleThreshold),
		p.tableThrottles(), tableThrottleThreshold, 1)
	add("QuotaViolationSpike", fmt.Sprintf("At least %d quota refusals in 5 minutes (%s/%s)", quotaViolationSpike, MetricsNamespace, MetricQuotaViolations),
		appMetric(MetricQuotaViolations), quotaViolationSpike, 1)
	add("TokensOverReserved", fmt.Sprintf("A model reported more tokens than its execution reserved (%s/%s): a monthly limit can be passed by that much", MetricsNamespace, MetricTokensOverReserved),
		appMetric(MetricTokensOverReserved), 1, 1)
	add("TenantErrorSpike", fmt.Sprintf("One tenant got at least %d 5XX answers in 5 minutes (Contributor Insights rule %s)", tenantErrorSpike, p.name(RuleErrorsByTenant)),
		p.insightMetric(RuleErrorsByTenant, "MaxContributorValue", "Most 5XX of one tenant"), tenantErrorSpike, 1)
}

// dashboard mirrors the seed's panels: platform health, tenant activity,
// resource usage and quota violations, then the alarms.
func (p *Platform) dashboard() {
	stage := p.API.DeploymentStage()
	header := func(md string) awscloudwatch.IWidget {
		return awscloudwatch.NewTextWidget(&awscloudwatch.TextWidgetProps{Markdown: jsii.String(md), Width: jsii.Number(24), Height: jsii.Number(float64(strings.Count(md, "\n") + 1))})
	}
	graph := func(title string, width float64, left []awscloudwatch.IMetric, right []awscloudwatch.IMetric) awscloudwatch.IWidget {
		props := &awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Width: jsii.Number(width), Height: jsii.Number(6), Left: &left}
		if len(right) > 0 {
			props.Right = &right
		}
		return awscloudwatch.NewGraphWidget(props)
	}

	var invocations, errs, throttles, durations, concurrency []awscloudwatch.IMetric
	for _, name := range FunctionNames() {
		fn := p.Functions[name]
		label := &awscloudwatch.MetricOptions{Label: jsii.String(name), Statistic: jsii.String("Sum"), Period: fiveMinutes()}
		invocations = append(invocations, fn.MetricInvocations(label))
		errs = append(errs, fn.MetricErrors(label))
		throttles = append(throttles, fn.MetricThrottles(label))
		durations = append(durations, fn.MetricDuration(&awscloudwatch.MetricOptions{Label: jsii.String(name), Statistic: jsii.String("p95"), Period: fiveMinutes()}))
		concurrency = append(concurrency, fn.Metric(jsii.String("ConcurrentExecutions"), &awscloudwatch.MetricOptions{Label: jsii.String(name), Statistic: jsii.String("Maximum"), Period: fiveMinutes()}))
	}
	quotaByType := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String(fmt.Sprintf(`SEARCH('{%s,quota_type} MetricName="%s"', 'Sum', 300)`, MetricsNamespace, MetricQuotaViolations)),
		UsingMetrics: &map[string]awscloudwatch.IMetric{},
		Label:        jsii.String("by quota type"),
		Period:       fiveMinutes(),
	})
	var alarms []interfacesawscloudwatch.IAlarmRef
	for _, id := range sortedKeys(p.Alarms) {
		alarms = append(alarms, p.Alarms[id])
	}

	p.Dashboard = awscloudwatch.NewDashboard(p.Construct, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName:   p.stack.StackName(),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	title := "# " + *p.stack.StackName() + ": the pool"
	if p.props.TenantID != "" {
		title = "# " + *p.stack.StackName() + ": silo of tenant " + p.props.TenantID
	}
	p.Dashboard.AddWidgets(header(title + "\n## Platform health"))
	p.Dashboard.AddWidgets(
		graph("API requests", 8, []awscloudwatch.IMetric{stage.MetricCount(&awscloudwatch.MetricOptions{Label: jsii.String("requests / 5 min"), Statistic: jsii.String("Sum"), Period: fiveMinutes()})}, nil),
		graph("API error rate (%)", 8, []awscloudwatch.IMetric{p.api4xxRate(), p.api5xxRate()}, nil),
		graph("API latency p95 (ms)", 8, []awscloudwatch.IMetric{
			stage.MetricLatency(&awscloudwatch.MetricOptions{Label: jsii.String("latency p95"), Statistic: jsii.String("p95"), Period: fiveMinutes()}),
			stage.MetricIntegrationLatency(&awscloudwatch.MetricOptions{Label: jsii.String("integration p95"), Statistic: jsii.String("p95"), Period: fiveMinutes()}),
		}, nil),
	)
	p.Dashboard.AddWidgets(
		graph("Lambda invocations", 6, invocations, nil),
		graph("Lambda errors", 6, errs, nil),
		graph("Lambda throttles", 6, throttles, nil),
		graph("Lambda duration p95 (ms)", 6, durations, nil),
	)
	p.Dashboard.AddWidgets(
		graph("Lambda concurrency (max)", 12, concurrency, nil),
		graph("DynamoDB", 12, []awscloudwatch.IMetric{p.tableThrottles()}, []awscloudwatch.IMetric{
			p.Table.MetricSuccessfulRequestLatency(&awscloudwatch.MetricOptions{Label: jsii.String("GetItem latency p95"), Statistic: jsii.String("p95"), Period: fiveMinutes(), DimensionsMap: &map[string]*string{"TableName": p.Table.TableName(), "Operation": jsii.String("GetItem")}}),
		}),
	)
	p.Dashboard.AddWidgets(header(fmt.Sprintf("## Tenant activity\nTop tenants: Contributor Insights rules `%s`, `%s` and `%s` (CloudWatch → Insights → Contributor Insights), and the table's throttled keys.",
		p.name(RuleRequestsByTenant), p.name(RuleTokensByTenant), p.name(RuleErrorsByTenant))))
	p.Dashboard.AddWidgets(
		graph("Active tenants (distinct tenants with requests)", 8, []awscloudwatch.IMetric{p.insightMetric(RuleRequestsByTenant, "UniqueContributors", "active tenants")}, nil),
		graph("Busiest tenant", 8, []awscloudwatch.IMetric{p.insightMetric(RuleRequestsByTenant, "MaxContributorValue", "requests of the busiest tenant")},
			[]awscloudwatch.IMetric{p.insightMetric(RuleTokensByTenant, "MaxContributorValue", "tokens of the heaviest tenant")}),
		graph("Executions", 8, []awscloudwatch.IMetric{appMetric(MetricExecutions)}, nil),
	)
	p.Dashboard.AddWidgets(header("## Resource usage and quotas"))
	p.Dashboard.AddWidgets(
		graph("Tokens and spend", 12, []awscloudwatch.IMetric{appMetric(MetricTokens)}, []awscloudwatch.IMetric{appMetric(MetricSpend)}),
		awscloudwatch.NewSingleValueWidget(&awscloudwatch.SingleValueWidgetProps{
			Title: jsii.String("Tokens and spend over the range"), Width: jsii.Number(6), Height: jsii.Number(6),
			Metrics:              &[]awscloudwatch.IMetric{appMetric(MetricTokens), appMetric(MetricSpend)},
			SetPeriodToTimeRange: jsii.Bool(true),
		}),
		graph("Quota violations", 6, []awscloudwatch.IMetric{appMetric(MetricQuotaViolations), quotaByType}, nil),
	)
	p.Dashboard.AddWidgets(header("## Alarms"))
	p.Dashboard.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
		Title: jsii.String("Alarms"), Width: jsii.Number(24), Height: jsii.Number(6), Alarms: &alarms,
	}))
}
