package rediscluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"opsmith.io/opsmith/api/common"
	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
)

// ownedConfig are the directives the operator writes first in every
// redis.conf; admission rejects them in spec.config.
var ownedConfig = [][2]string{
	{"port", fmt.Sprint(clientPort)},
	{"cluster-enabled", "yes"},
	{"cluster-config-file", dataDir + "/nodes.conf"},
	{"dir", dataDir},
	{"daemonize", "no"},
	// Logs go to the container's standard output.
	{"logfile", `""`},
}

// hashes say what a node's pod was made from (see the annotations).
type hashes struct {
	pod, config, configKeys string
}

// nodeConfig is the configuration every node of a RedisCluster runs with.
type nodeConfig struct {
	// file is redis.conf, password included.
	file string
	// runtime are the directives set with CONFIG SET when they change:
	// the operator's defaults with spec.config's run-time directives over
	// them.
	runtime map[string]string
	hashes  hashes
}

// renderConfig computes the nodes' configuration from the spec and the
// password. Values that would break redis.conf's syntax (a line break,
// a quote, a backslash) are refused with a message for status and
// nothing is written: admission checks the values of the directives it
// knows, but a rule over every value of the map would cost more than the
// API server allows.
func renderConfig(rc *redisv1alpha1.RedisCluster, password string) (nodeConfig, error) {
	runtime := redisv1alpha1.DefaultConfig()
	restart := map[string]string{}
	var userRuntimeKeys []string
	for k, v := range rc.Spec.Config {
		if strings.ContainsAny(v, "\r\n\"'\\") || strings.ContainsAny(k, " \t\r\n") {
			return nodeConfig{}, fmt.Errorf("config %q: values must be on one line, without quotes or backslashes", k)
		}
		if redisv1alpha1.RestartOnlyConfig(k) {
			restart[k] = v
			continue
		}
		if _, hasDefault := runtime[k]; !hasDefault {
			userRuntimeKeys = append(userRuntimeKeys, k)
		}
		runtime[k] = v
	}
	slices.Sort(userRuntimeKeys)

	var b strings.Builder
	b.WriteString("# Written by opsmith for RedisCluster " + rc.Namespace + "/" + rc.Name + "; changes here are overwritten.\n")
	for _, kv := range ownedConfig {
		fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
	}
	fmt.Fprintf(&b, "requirepass %s\nmasterauth %s\n", quote(password), quote(password))
	for _, k := range sortedKeys(restart) {
		fmt.Fprintf(&b, "%s %s\n", k, restart[k])
	}
	for _, k := range sortedKeys(runtime) {
		fmt.Fprintf(&b, "%s %s\n", k, configValue(runtime[k]))
	}
	return nodeConfig{
		file:    b.String(),
		runtime: runtime,
		hashes: hashes{
			pod:        podHash(rc, restart, password),
			config:     hashOf(runtime),
			configKeys: strings.Join(userRuntimeKeys, ","),
		},
	}, nil
}

// configValue writes a run-time directive's value as redis.conf reads it:
// as given (save "3600 1 300 100" is several arguments on the line), or
// "" for an empty value.
func configValue(v string) string {
	if strings.TrimSpace(v) == "" {
		return `""`
	}
	return v
}

// quote writes s as one double-quoted redis.conf argument.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range []byte(s) {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteByte(r)
		case r < 0x20 || r >= 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteByte(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// podTemplate is what only a restart changes.
type podTemplate struct {
	Image           string                      `json:"image"`
	ImagePullPolicy string                      `json:"imagePullPolicy,omitempty"`
	Resources       common.ResourceRequirements `json:"resources"`
	Scheduling      common.Scheduling           `json:"scheduling"`
	RestartConfig   map[string]string           `json:"restartConfig,omitempty"`
	// Password is a hash of the password salted with the cluster's UID:
	// the pod annotation must not let anyone test guesses offline.
	Password string `json:"password"`
	Revision int    `json:"revision"`
}

// podRevision changes when this package changes the node pods in a way
// that should restart existing nodes.
const podRevision = 1

func podHash(rc *redisv1alpha1.RedisCluster, restart map[string]string, password string) string {
	pw := sha256.Sum256([]byte(string(rc.UID) + "\x00" + password))
	return hashOf(podTemplate{
		Image: Image(rc), ImagePullPolicy: string(rc.Spec.ImagePullPolicy),
		Resources: rc.Spec.Resources, Scheduling: rc.Spec.Scheduling,
		RestartConfig: restart, Password: hex.EncodeToString(pw[:]), Revision: podRevision,
	})
}

func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// needsRestart reports whether a node's pod, made with the annotations
// it has, must restart to run cfg: its restart-only parts changed, or a
// run-time directive it was given is no longer in spec.config (CONFIG SET
// cannot give back Redis's own default).
func needsRestart(annotations map[string]string, cfg nodeConfig) bool {
	if annotations[AnnotationPodHash] != cfg.hashes.pod {
		return true
	}
	had := annotations[AnnotationConfigKeys]
	if had == "" {
		return false
	}
	want := strings.Split(cfg.hashes.configKeys, ",")
	for _, k := range strings.Split(had, ",") {
		if !slices.Contains(want, k) {
			return true
		}
	}
	return false
}
