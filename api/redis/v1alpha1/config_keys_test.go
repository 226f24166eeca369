package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	schemacel "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
)

// These tests run without a cluster: they read the generated CRD and
// evaluate spec.config's CEL rules with the API server's own CEL library,
// so `go test -short` checks them too. validation_test.go sends the same
// cases (and the rest of the spec) to a real kube-apiserver.

func crdPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "config", "crd", "bases", "redis.opsmith.io_redisclusters.yaml")
}

// loadCRD reads the generated CRD as the API server's internal type.
func loadCRD(t *testing.T) *apiextensions.CustomResourceDefinition {
	t.Helper()
	b, err := os.ReadFile(crdPath())
	if err != nil {
		t.Fatal(err)
	}
	var v1 apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(b, &v1); err != nil {
		t.Fatal(err)
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&v1)
	var crd apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1, &crd, nil); err != nil {
		t.Fatal(err)
	}
	return &crd
}

// configSchema is the schema of spec.config in the generated CRD.
func configSchema(t *testing.T) *apiextensions.JSONSchemaProps {
	t.Helper()
	crd := loadCRD(t)
	// With one version, the internal type keeps its schema at the top.
	v := crd.Spec.Validation
	if v == nil && len(crd.Spec.Versions) == 1 {
		v = crd.Spec.Versions[0].Schema
	}
	if v == nil || v.OpenAPIV3Schema == nil {
		t.Fatal("no schema in the CRD")
	}
	s, ok := v.OpenAPIV3Schema.Properties["spec"].Properties["config"]
	if !ok {
		t.Fatal("spec.config not in the CRD")
	}
	return &s
}

// TestCRDValid validates the generated CRD as the API server does when it
// is created, estimated CEL costs included.
func TestCRDValid(t *testing.T) {
	crd := loadCRD(t)
	if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), crd); len(errs) > 0 {
		for _, e := range errs {
			t.Error(e)
		}
	}
}

// TestConfigRuleCosts logs the estimated cost of spec.config's rules and
// keeps each well under the API server's per-expression limit, so that
// adding keys to a rule cannot bring the CRD close to being refused.
func TestConfigRuleCosts(t *testing.T) {
	ss, err := schema.NewStructural(configSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	results, err := schemacel.Compile(ss, model.SchemaDeclType(ss, false), celconfig.PerCallLimit,
		environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()), schemacel.NewExpressionsEnvLoader())
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for i, r := range results {
		if r.Error != nil || r.MessageExpressionError != nil {
			t.Errorf("rule %d: %v %v", i, r.Error, r.MessageExpressionError)
			continue
		}
		total += r.MaxCost
		t.Logf("rule %2d: cost %8d, message %8d", i, r.MaxCost, r.MessageExpressionMaxCost)
		if limit := uint64(crdvalidation.StaticEstimatedCostLimit / 2); r.MaxCost > limit || r.MessageExpressionMaxCost > limit {
			t.Errorf("rule %d (%s): estimated cost %d, message %d: above half the limit %d",
				i, ss.XValidations[i].Rule, r.MaxCost, r.MessageExpressionMaxCost, crdvalidation.StaticEstimatedCostLimit)
		}
	}
	t.Logf("total %d of %d for the CRD", total, crdvalidation.StaticEstimatedCRDCostLimit)
}

var (
	literal    = regexp.MustCompile(`'([^']*)'`)
	startsWith = regexp.MustCompile(`k\.startsWith\('([^']*)'\)`)
	forbidding = regexp.MustCompile(`^!self\.exists\(k, (.*)\)$`)
	configKey  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
)

// TestForbiddenConfigMatchesCRD parses the rules of spec.config that
// forbid keys and checks that they forbid exactly the keys and prefixes
// of ForbiddenConfigGroups, group by group, with the same reasons.
func TestForbiddenConfigMatchesCRD(t *testing.T) {
	var rules []apiextensions.ValidationRule
	for _, r := range configSchema(t).XValidations {
		if forbidding.MatchString(r.Rule) {
			rules = append(rules, r)
		}
	}
	groups := redisv1alpha1.ForbiddenConfigGroups()
	if len(rules) != len(groups) {
		t.Fatalf("%d rules forbid keys, ForbiddenConfigGroups has %d groups", len(rules), len(groups))
	}
	for i, g := range groups {
		r := rules[i]
		cond := forbidding.FindStringSubmatch(r.Rule)[1]
		var prefixes []string
		for _, m := range startsWith.FindAllStringSubmatch(cond, -1) {
			prefixes = append(prefixes, m[1])
		}
		var keys []string
		for _, m := range literal.FindAllStringSubmatch(startsWith.ReplaceAllString(cond, ""), -1) {
			keys = append(keys, m[1])
		}
		if !slices.Equal(keys, g.Keys) || !slices.Equal(prefixes, g.Prefixes) {
			t.Errorf("rule %d forbids keys %q and prefixes %q, group %d has %q and %q", i, keys, prefixes, i, g.Keys, g.Prefixes)
		}
		if want := "'config ' + self.filter(k, " + cond + ")[0] + ' cannot be set: " + g.Reason + "'"; r.MessageExpression != want {
			t.Errorf("rule %d: messageExpression\n%s\nwant\n%s", i, r.MessageExpression, want)
		}
		if want := "config keys the operator owns cannot be set: " + g.Reason; r.Message != want {
			t.Errorf("rule %d: message %q, want %q", i, r.Message, want)
		}
	}
}

// configValidator evaluates spec.config's rules like the API server.
type configValidator struct {
	v  *schemacel.Validator
	ss *schema.Structural
}

func newConfigValidator(t *testing.T) configValidator {
	t.Helper()
	ss, err := schema.NewStructural(configSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	v := schemacel.NewValidator(ss, false, celconfig.PerCallLimit)
	if v == nil {
		t.Fatal("spec.config has no CEL rules")
	}
	return configValidator{v: v, ss: ss}
}

// check returns the messages of the rules config breaks.
func (c configValidator) check(t *testing.T, config map[string]string) []string {
	t.Helper()
	obj := map[string]any{}
	for k, v := range config {
		obj[k] = v
	}
	errs, remaining := c.v.Validate(context.Background(), field.NewPath("spec", "config"), c.ss, obj, nil, celconfig.RuntimeCELCostBudget)
	if remaining < 0 {
		t.Fatalf("%v: runtime cost budget exceeded", config)
	}
	var msgs []string
	for _, e := range errs {
		if e.Type != field.ErrorTypeInvalid && e.Type != field.ErrorTypeForbidden {
			t.Errorf("%v: unexpected error %v", config, e)
		}
		msgs = append(msgs, e.Detail)
	}
	return msgs
}

// forbiddenSamples are every forbidden key, and a few keys under each
// forbidden prefix, with the reason admission gives.
func forbiddenSamples() map[string]string {
	keys := redisv1alpha1.ForbiddenConfigKeys()
	for _, g := range redisv1alpha1.ForbiddenConfigGroups() {
		for _, p := range g.Prefixes {
			keys[p+"x"] = g.Reason
		}
	}
	for _, k := range []string{"cluster-announce-ip", "cluster-announce-port", "cluster-announce-bus-port",
		"cluster-announce-tls-port", "cluster-announce-hostname", "cluster-announce-human-nodename",
		"tls-port", "tls-cert-file", "tls-replication", "tls-cluster"} {
		reason, ok := redisv1alpha1.ForbiddenConfigReason(k)
		if !ok {
			panic(k + " is not forbidden")
		}
		keys[k] = reason
	}
	return keys
}

func TestForbiddenConfigRejectedLocally(t *testing.T) {
	c := newConfigValidator(t)
	for k, reason := range forbiddenSamples() {
		msgs := c.check(t, map[string]string{k: "x"})
		if want := "config " + k + " cannot be set: " + reason; len(msgs) == 0 || !slices.Contains(msgs, want) {
			t.Errorf("%s: got %q, want %q", k, msgs, want)
		}
	}
	msgs := c.check(t, map[string]string{"port": "1", "bind": "0.0.0.0", "maxclients": "10"})
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "config port cannot") && !strings.HasPrefix(msgs[0], "config bind cannot") {
		t.Errorf("two keys of one group: %q, want one message naming one of them", msgs)
	}
}

// allowedKeys are directives users may set, some near forbidden ones.
var allowedKeys = []string{"maxclients", "maxmemory", "save", "cluster-node-timeout", "cluster-replica-validity-factor",
	"cluster-require-full-coverage", "cluster-allow-reads-when-down", "cluster-replica-no-failover",
	"cluster-link-sendbuf-limit", "cluster-allow-pubsubshard-when-down", "replica-announced", "replica-priority",
	"replica-read-only", "appendonly", "io-threads", "tcp-backlog", "syslog-enabled", "timeout", "notify-keyspace-events",
	"client-output-buffer-limit", "oom-score-adj", "latency-tracking", "tcp-keepalive", "acllog-max-len", "hz"}

func TestForbiddenConfigReason(t *testing.T) {
	for k := range forbiddenSamples() {
		if _, ok := redisv1alpha1.ForbiddenConfigReason(k); !ok {
			t.Errorf("%s not forbidden", k)
		}
	}
	for _, k := range allowedKeys {
		if reason, ok := redisv1alpha1.ForbiddenConfigReason(k); ok {
			t.Errorf("%s forbidden: %s", k, reason)
		}
	}
	g := redisv1alpha1.ForbiddenConfigGroups()
	g[0].Keys[0] = "changed"
	if redisv1alpha1.ForbiddenConfigGroups()[0].Keys[0] == "changed" {
		t.Error("ForbiddenConfigGroups returns its own slices")
	}
}

// configCase is a spec.config and the messages admission must give (none:
// accepted).
type configCase struct {
	config  map[string]string
	wantErr []string
}

// configCases are the value checks; validation_test.go sends them to the
// API server too.
var configCases = map[string]configCase{
	"sample":                    {config: map[string]string{"maxclients": "10000"}},
	"maxmemory 100mb":           {config: map[string]string{"maxmemory": "100mb"}},
	"maxmemory 1GB":             {config: map[string]string{"maxmemory": "1GB"}},
	"maxmemory bytes":           {config: map[string]string{"maxmemory": "1073741824"}},
	"maxmemory 0":               {config: map[string]string{"maxmemory": "0"}},
	"maxmemory 512k":            {config: map[string]string{"maxmemory": "512k"}},
	"maxmemory lots":            {config: map[string]string{"maxmemory": "lots"}, wantErr: []string{"config maxmemory must be a memory size"}},
	"maxmemory 1Gi":             {config: map[string]string{"maxmemory": "1Gi"}, wantErr: []string{"config maxmemory must be a memory size", "Gi are not Redis units"}},
	"maxmemory negative":        {config: map[string]string{"maxmemory": "-1mb"}, wantErr: []string{"config maxmemory must be a memory size"}},
	"repl-backlog-size":         {config: map[string]string{"repl-backlog-size": "64mb"}},
	"repl-backlog-size 1.5gb":   {config: map[string]string{"repl-backlog-size": "1.5gb"}, wantErr: []string{"config repl-backlog-size must be a memory size"}},
	"maxmemory-policy":          {config: map[string]string{"maxmemory-policy": "allkeys-lru"}},
	"maxmemory-policy any case": {config: map[string]string{"maxmemory-policy": "VOLATILE-TTL"}},
	"maxmemory-policy lru": {config: map[string]string{"maxmemory-policy": "lru"},
		wantErr: []string{"config maxmemory-policy must be one of noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl"}},
	"appendfsync always":    {config: map[string]string{"appendfsync": "always"}},
	"appendfsync no":        {config: map[string]string{"appendfsync": "no"}},
	"appendfsync sometimes": {config: map[string]string{"appendfsync": "sometimes"}, wantErr: []string{"config appendfsync must be one of always, everysec, no"}},
	"loglevel warning":      {config: map[string]string{"loglevel": "warning"}},
	"loglevel info":         {config: map[string]string{"loglevel": "info"}, wantErr: []string{"config loglevel must be one of debug, verbose, notice, warning"}},
	"repl-diskless-load":    {config: map[string]string{"repl-diskless-load": "swapdb"}},
	"repl-diskless-load on": {config: map[string]string{"repl-diskless-load": "on"}, wantErr: []string{"config repl-diskless-load must be one of disabled, on-empty-db, swapdb"}},
	"maxclients 0":          {config: map[string]string{"maxclients": "0"}, wantErr: []string{"config maxclients must be a whole number from 1 to 4294967295"}},
	"maxclients 01":         {config: map[string]string{"maxclients": "01"}, wantErr: []string{"config maxclients must be a whole number"}},
	"maxclients +5":         {config: map[string]string{"maxclients": "+5"}, wantErr: []string{"config maxclients must be a whole number"}},
	"maxclients 1e4":        {config: map[string]string{"maxclients": "1e4"}, wantErr: []string{"config maxclients must be a whole number"}},
	"maxclients empty":      {config: map[string]string{"maxclients": ""}, wantErr: []string{"config maxclients must be a whole number"}},
	"timeout 0":             {config: map[string]string{"timeout": "0"}},
	"timeout 00":            {config: map[string]string{"timeout": "00"}, wantErr: []string{"config timeout must be a whole number"}},
	"lua-time-limit 1s":     {config: map[string]string{"lua-time-limit": "1s"}, wantErr: []string{"config lua-time-limit must be a whole number, 0 or more"}},
	"tcp-backlog 2^31-1":    {config: map[string]string{"tcp-backlog": "2147483647"}},
	"yes/no any case":       {config: map[string]string{"appendonly": "Yes", "replica-read-only": "NO"}},
	"yes/no mixed case":     {config: map[string]string{"appendonly": "yEs"}, wantErr: []string{"config appendonly must be yes or no"}},
	"appendfsync upper":     {config: map[string]string{"appendfsync": "EVERYSEC"}},
	"maxclients too big":    {config: map[string]string{"maxclients": "4294967296"}, wantErr: []string{"config maxclients must be a whole number"}},
	"maxclients huge":       {config: map[string]string{"maxclients": "99999999999999999999999"}, wantErr: []string{"config maxclients must be a whole number"}},
	"hz 10":                 {config: map[string]string{"hz": "10"}},
	"hz 500":                {config: map[string]string{"hz": "500"}},
	"hz abc":                {config: map[string]string{"hz": "abc"}, wantErr: []string{"config hz must be a whole number from 1 to 500"}},
	"hz 0":                  {config: map[string]string{"hz": "0"}, wantErr: []string{"config hz must be a whole number from 1 to 500"}},
	"hz 501":                {config: map[string]string{"hz": "501"}, wantErr: []string{"config hz must be a whole number from 1 to 500"}},
	"io-threads 4":          {config: map[string]string{"io-threads": "4"}},
	"io-threads 129":        {config: map[string]string{"io-threads": "129"}, wantErr: []string{"config io-threads must be a whole number from 1 to 128"}},
	"cluster-node-timeout":  {config: map[string]string{"cluster-node-timeout": "15000"}},
	"cluster-node-timeout 500": {config: map[string]string{"cluster-node-timeout": "500"},
		wantErr: []string{"config cluster-node-timeout is in milliseconds and must be a whole number of at least 1000"}},
	"slowlog-log-slower-than -1": {config: map[string]string{"slowlog-log-slower-than": "-1"}},
	"slowlog-log-slower-than -2": {config: map[string]string{"slowlog-log-slower-than": "-2"}, wantErr: []string{"config slowlog-log-slower-than must be"}},
	"whole numbers": {config: map[string]string{"timeout": "0", "tcp-keepalive": "300", "min-replicas-to-write": "1",
		"min-replicas-max-lag": "10", "lua-time-limit": "5000", "busy-reply-threshold": "5000", "slowlog-max-len": "128",
		"latency-monitor-threshold": "0", "tcp-backlog": "511", "repl-timeout": "60"}},
	"timeout -1": {config: map[string]string{"timeout": "-1"}, wantErr: []string{"config timeout must be a whole number from 0 to 2147483647"}},
	"two whole numbers wrong": {config: map[string]string{"timeout": "1s", "tcp-keepalive": "abc", "maxclients": "10"},
		wantErr: []string{"config timeout must be a whole number from 0 to 2147483647"}},
	"timeout above int32":      {config: map[string]string{"timeout": "2147483648"}, wantErr: []string{"config timeout must be a whole number from 0 to 2147483647"}},
	"slowlog-max-len negative": {config: map[string]string{"slowlog-max-len": "-1"}, wantErr: []string{"config slowlog-max-len must be a whole number, 0 or more"}},
	"repl-timeout 0":           {config: map[string]string{"repl-timeout": "0"}, wantErr: []string{"config repl-timeout must be a whole number from 1 to 2147483647"}},
	"yes/no":                   {config: map[string]string{"appendonly": "no", "activedefrag": "YES", "cluster-require-full-coverage": "no", "lazyfree-lazy-eviction": "yes"}},
	"appendonly true":          {config: map[string]string{"appendonly": "true"}, wantErr: []string{"config appendonly must be yes or no"}},
	"cluster-allow-reads 1":    {config: map[string]string{"cluster-allow-reads-when-down": "1"}, wantErr: []string{"config cluster-allow-reads-when-down must be yes or no"}},
	"save empty":               {config: map[string]string{"save": ""}},
	"save pairs":               {config: map[string]string{"save": "3600 1 300 100"}},
	"save one pair":            {config: map[string]string{"save": "900 1"}},
	"save 60":                  {config: map[string]string{"save": "60"}, wantErr: []string{"config save must be empty (no snapshots) or pairs of whole numbers"}},
	"save odd":                 {config: map[string]string{"save": "3600 1 300"}, wantErr: []string{"config save must be"}},
	"save words":               {config: map[string]string{"save": "hourly"}, wantErr: []string{"config save must be"}},
	"unchecked values":         {config: map[string]string{"client-output-buffer-limit": "normal 0 0 0", "notify-keyspace-events": "Ex", "oom-score-adj": "relative"}},
	"long value":               {config: map[string]string{"notify-keyspace-events": strings.Repeat("E", 1025)}, wantErr: []string{"at most 1024 characters"}},
	"upper-case key":           {config: map[string]string{"MaxClients": "10"}, wantErr: []string{"config keys are redis.conf directives"}},
	"key with underscore":      {config: map[string]string{"server_cpulist": "0-3"}, wantErr: []string{"config keys are redis.conf directives"}},
	"defaults":                 {config: redisv1alpha1.DefaultConfig(), wantErr: []string{"config cluster-allow-replica-migration cannot be set"}},
}

func TestConfigValuesLocally(t *testing.T) {
	c := newConfigValidator(t)
	for name, tc := range configCases {
		t.Run(name, func(t *testing.T) {
			msgs := c.check(t, tc.config)
			if len(tc.wantErr) == 0 {
				if len(msgs) > 0 {
					t.Fatalf("rejected: %q", msgs)
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("got %d messages %q, want one containing %q", len(msgs), msgs, tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(msgs[0], want) {
					t.Errorf("message %q does not contain %q", msgs[0], want)
				}
			}
		})
	}
}

// TestConfigRuleRuntimeCost fills spec.config with its 128 keys of the
// longest values and checks the rules stay within the runtime budget.
func TestConfigRuleRuntimeCost(t *testing.T) {
	c := newConfigValidator(t)
	// Every key a rule names (their values are traversed), then long
	// other keys, all with the longest values.
	config := map[string]string{}
	for _, r := range configSchema(t).XValidations {
		for _, m := range literal.FindAllStringSubmatch(r.Rule, -1) {
			if k := m[1]; len(config) < 128 && configKey.MatchString(k) {
				config[k] = strings.Repeat("1", 1024)
			}
		}
	}
	for i := 0; len(config) < 128; i++ {
		config["k"+strings.Repeat("x", 60)+string(rune('a'+i%26))+string(rune('a'+i/26))] = strings.Repeat("1", 1024)
	}
	obj := map[string]any{}
	for k, v := range config {
		obj[k] = v
	}
	errs, remaining := c.v.Validate(context.Background(), field.NewPath("spec", "config"), c.ss, obj, nil, celconfig.RuntimeCELCostBudget)
	for _, e := range errs {
		// Rejections are expected; running out of budget is not.
		if strings.Contains(e.Detail, "cost") || strings.Contains(e.Detail, "budget") {
			t.Error(e)
		}
	}
	if remaining < 0 {
		t.Fatal("runtime cost budget exceeded")
	}
	t.Logf("%d keys, %d rejections, runtime cost %d of %d", len(config), len(errs), celconfig.RuntimeCELCostBudget-remaining, celconfig.RuntimeCELCostBudget)
}

func TestRestartOnlyConfig(t *testing.T) {
	for _, k := range []string{"io-threads", "io-threads-do-reads", "tcp-backlog", "always-show-logo", "syslog-enabled",
		"syslog-ident", "syslog-facility", "set-proc-title", "rdbchecksum", "disable-thp"} {
		if !redisv1alpha1.RestartOnlyConfig(k) {
			t.Errorf("%s: CONFIG SET cannot change it in Redis 7.0", k)
		}
		if _, forbidden := redisv1alpha1.ForbiddenConfigReason(k); forbidden {
			t.Errorf("%s is restart-only and forbidden: one of the two lists is wrong", k)
		}
	}
	for _, k := range []string{"maxclients", "maxmemory", "maxmemory-policy", "save", "appendonly", "appendfsync",
		"cluster-node-timeout", "oom-score-adj", "hz", "timeout", "notify-keyspace-events", "client-output-buffer-limit"} {
		if redisv1alpha1.RestartOnlyConfig(k) {
			t.Errorf("%s: CONFIG SET changes it in Redis 7.0", k)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	d := redisv1alpha1.DefaultConfig()
	if d["appendonly"] != "yes" || d["appendfsync"] != "everysec" {
		t.Errorf("persistence defaults: %v", d)
	}
	for k := range d {
		if redisv1alpha1.RestartOnlyConfig(k) {
			t.Errorf("default %s is restart-only: the controller sets defaults with CONFIG SET", k)
		}
	}
	d["appendonly"] = "no"
	if redisv1alpha1.DefaultConfig()["appendonly"] != "yes" {
		t.Error("DefaultConfig returns a shared map")
	}
	// Defaults users may override must pass admission's value checks.
	c := newConfigValidator(t)
	for k, v := range redisv1alpha1.DefaultConfig() {
		if _, forbidden := redisv1alpha1.ForbiddenConfigReason(k); forbidden {
			continue
		}
		if msgs := c.check(t, map[string]string{k: v}); len(msgs) > 0 {
			t.Errorf("default %s %s rejected: %q", k, v, msgs)
		}
	}
}
