package v1alpha1

import "strings"

// This file is the Go side of spec.config: the directives the operator
// owns (admission rejects them with the CEL rules on RedisConfig, in
// config_types.go; config_keys_test.go checks that the two lists are the
// same), the directives only a restart changes, and the operator's
// defaults.

// ForbiddenConfig is a group of redis.conf directives spec.config may not
// set, for one reason.
//
// +kubebuilder:object:generate=false
type ForbiddenConfig struct {
	// Keys are the directives, exactly.
	Keys []string
	// Prefixes forbid every directive that starts with one of them.
	Prefixes []string
	// Reason says why, as admission's message ends: "config <keys>
	// cannot be set: <Reason>".
	Reason string
}

// forbiddenConfig must list exactly the keys, prefixes and reasons of the
// CEL rules on RedisConfig.
var forbiddenConfig = []ForbiddenConfig{
	{
		Keys: []string{"port", "bind", "bind-source-addr", "unixsocket", "unixsocketperm", "protected-mode",
			"cluster-port", "cluster-preferred-endpoint-type",
			"replica-announce-ip", "replica-announce-port", "slave-announce-ip", "slave-announce-port"},
		Prefixes: []string{"cluster-announce-"},
		Reason:   "the operator owns how the nodes listen and how they announce themselves to each other and to clients (ports, addresses, protected mode)",
	},
	{
		Keys:   []string{"daemonize", "supervised", "pidfile", "logfile"},
		Reason: "the operator runs redis-server in the foreground of its container, logging to standard output (kubectl logs)",
	},
	{
		Keys:   []string{"dir", "dbfilename", "appendfilename", "appenddirname", "cluster-config-file"},
		Reason: "the operator owns the data directory on the node volume and the names of the files in it (RDB file, append-only files, nodes.conf)",
	},
	{
		Keys:   []string{"cluster-enabled", "replicaof", "slaveof", "cluster-allow-replica-migration", "cluster-migration-barrier"},
		Reason: "the operator runs every node in cluster mode and chooses the master each replica follows; replicas stay in their shard (no replica migration)",
	},
	{
		Keys:   []string{"databases"},
		Reason: "Redis Cluster has only database 0",
	},
	{
		Keys:   []string{"requirepass", "masterauth", "masteruser", "aclfile", "user"},
		Reason: "the password comes from spec.auth (key password of the Secret) and the operator authenticates as the default user; ACL users are not supported yet",
	},
	{
		Keys:   []string{"rename-command", "enable-debug-command", "enable-module-command", "enable-protected-configs"},
		Reason: "the operator needs every command under its own name, and clients must not reach DEBUG, MODULE or the protected directives the operator owns",
	},
	{
		Keys:   []string{"include", "loadmodule"},
		Reason: "modules and included files are not supported: config is the whole configuration of the nodes",
	},
	{
		Keys:     []string{},
		Prefixes: []string{"tls-"},
		Reason:   "TLS is not supported yet: the nodes serve plain TCP",
	},
}

// ForbiddenConfigGroups returns the groups of directives spec.config may
// not set, each with its reason: the same as admission's rules. The
// result is a copy.
func ForbiddenConfigGroups() []ForbiddenConfig {
	out := make([]ForbiddenConfig, len(forbiddenConfig))
	for i, g := range forbiddenConfig {
		out[i] = ForbiddenConfig{
			Keys:     append([]string{}, g.Keys...),
			Prefixes: append([]string{}, g.Prefixes...),
			Reason:   g.Reason,
		}
	}
	return out
}

// ForbiddenConfigKeys returns every directive spec.config may not set
// that is named exactly, with the reason. Directives forbidden by a prefix
// (tls-*, cluster-announce-*) are not in it; ForbiddenConfigReason knows
// them too.
func ForbiddenConfigKeys() map[string]string {
	out := map[string]string{}
	for _, g := range forbiddenConfig {
		for _, k := range g.Keys {
			out[k] = g.Reason
		}
	}
	return out
}

// ForbiddenConfigReason reports whether spec.config may not set key, and
// why. Admission already rejects these; the controller can check again
// (for an object stored before a rule existed).
func ForbiddenConfigReason(key string) (reason string, forbidden bool) {
	for _, g := range forbiddenConfig {
		for _, k := range g.Keys {
			if k == key {
				return g.Reason, true
			}
		}
		for _, p := range g.Prefixes {
			if strings.HasPrefix(key, p) {
				return g.Reason, true
			}
		}
	}
	return "", false
}

// restartOnlyConfig are the directives Redis 7.0 reads only at start
// (IMMUTABLE_CONFIG in its src/config.c: CONFIG SET answers "can't set
// immutable config"), among those spec.config may set. The immutable
// directives the operator owns (daemonize, cluster-enabled, databases,
// pidfile, logfile, unixsocket, unixsocketperm, cluster-port,
// cluster-config-file, appendfilename, appenddirname, aclfile, supervised,
// enable-*-command, enable-protected-configs, replicaof) are rejected by
// admission and so not here; the cpu lists (server_cpulist, ...) are not
// either, since config keys cannot hold '_'.
//
// disable-thp is listed on the safe side: Redis applies it when it starts,
// and a restart is never wrong where CONFIG SET might be refused. A
// directive missing here that Redis does refuse at run time is reported
// by CONFIG SET ("immutable config"); the controller may then restart.
var restartOnlyConfig = map[string]bool{
	"always-show-logo":    true,
	"disable-thp":         true,
	"io-threads":          true,
	"io-threads-do-reads": true,
	"rdbchecksum":         true,
	"set-proc-title":      true,
	"syslog-enabled":      true,
	"syslog-facility":     true,
	"syslog-ident":        true,
	"tcp-backlog":         true,
}

// RestartOnlyConfig reports whether Redis 7.0 reads the directive key
// only when it starts, so changing it restarts the nodes one at a time;
// every other directive spec.config may set is applied with CONFIG SET.
func RestartOnlyConfig(key string) bool {
	return restartOnlyConfig[key]
}

// DefaultConfig returns the directives the operator sets on every node
// unless spec.config sets them, all of which CONFIG SET can change (a
// new map on each call; the caller may change it):
//
//   - appendonly yes, appendfsync everysec: a node that restarts (every
//     rolling update) reloads its data from its volume, losing at most
//     about a second of writes if it crashed; Redis's default is no
//     append-only file.
//   - cluster-node-timeout 5000: a failed master's replica takes over after
//     5 s rather than Redis's 15 s, still well above the pauses of a
//     healthy pod network. Lower values make nodes fail over on network
//     hiccups (admission rejects values below 1000); higher ones keep
//     a dead master's slots unavailable longer. A replica cut off from its
//     master for longer than cluster-node-timeout ×
//     cluster-replica-validity-factor (10: 50 s) plus the ping period
//     refuses to fail over on its own; CLUSTER FAILOVER FORCE still can.
//   - cluster-allow-replica-migration no: replicas stay in the shard the
//     operator put them in (their pod names say which) instead of moving
//     to a master that lost its replicas. Admission rejects it (and
//     cluster-migration-barrier) in spec.config.
func DefaultConfig() map[string]string {
	return map[string]string{
		"appendonly":                      "yes",
		"appendfsync":                     "everysec",
		"cluster-node-timeout":            "5000",
		"cluster-allow-replica-migration": "no",
	}
}
