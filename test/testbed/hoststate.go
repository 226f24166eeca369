package testbed

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// HostState is what a real-node cluster changes on the machine: network
// links, mount points, firewall rules (iptables and nftables) and the
// processes of its containers. The real-node mode snapshots it before it
// starts, so that Stop can remove exactly what the cluster added, and tests
// compare a snapshot taken before Start with one taken after Stop.
type HostState struct {
	Links    []string `json:"links"`
	Mounts   []string `json:"mounts"`
	Iptables []string `json:"iptables"` // "<binary> <table> <line>", counters dropped
	Nftables []string `json:"nftables"` // "<family> <table>"
}

// SnapshotHost records the machine's links, mounts and firewall rules.
func SnapshotHost() (HostState, error) {
	var s HostState
	var err error
	if s.Links, err = links(); err != nil {
		return s, err
	}
	if s.Mounts, err = mountPoints(); err != nil {
		return s, err
	}
	if s.Iptables, err = iptablesRules(); err != nil {
		return s, err
	}
	if s.Nftables, err = nftTables(); err != nil {
		return s, err
	}
	return s, nil
}

// Added lists what after has and s has not, one line per item, for example
// "link opsmith0" or "iptables iptables nat -A KUBE-SERVICES ...".
func (s HostState) Added(after HostState) []string {
	var out []string
	add := func(kind string, before, now []string) {
		seen := make(map[string]bool, len(before))
		for _, x := range before {
			seen[x] = true
		}
		for _, x := range now {
			if !seen[x] {
				out = append(out, kind+" "+x)
			}
		}
	}
	add("link", s.Links, after.Links)
	add("mount", s.Mounts, after.Mounts)
	add("iptables", s.Iptables, after.Iptables)
	add("nftables", s.Nftables, after.Nftables)
	return out
}

func links() ([]string, error) {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, nil
}

// mountPoints returns the mount points of this mount namespace, from
// /proc/self/mountinfo (field 5, octal escapes kept).
func mountPoints() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 4 {
			out = append(out, unescapeMount(f[4]))
		}
	}
	sort.Strings(out)
	return out, sc.Err()
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// iptablesRules returns every chain and rule of every table, for IPv4 and
// (where the tool exists) IPv6, without packet counters.
func iptablesRules() ([]string, error) {
	var out []string
	for _, bin := range []string{"iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			if bin == "iptables-save" {
				return nil, fmt.Errorf("iptables-save not found: install the iptables package (hack/install-node-deps.sh)")
			}
			continue
		}
		data, err := exec.Command(bin).Output()
		if err != nil {
			if bin == "ip6tables-save" {
				continue // no IPv6 support in this kernel
			}
			return nil, fmt.Errorf("%s: %w", bin, err)
		}
		family := strings.TrimSuffix(bin, "-save")
		table := ""
		for line := range strings.SplitSeq(string(data), "\n") {
			switch {
			case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
			case strings.HasPrefix(line, "*"):
				table = line[1:]
			case strings.HasPrefix(line, ":"):
				// ":CHAIN POLICY [packets:bytes]": keep name and policy.
				f := strings.Fields(line)
				if len(f) >= 2 {
					line = f[0] + " " + f[1]
				}
				out = append(out, family+" "+table+" "+line)
			default:
				out = append(out, family+" "+table+" "+line)
			}
		}
	}
	return out, nil
}

// nftTables lists the nftables tables, when the nft tool is installed
// (kube-proxy's iptables mode removes the tables of its nftables mode and
// may create them on the way).
func nftTables() ([]string, error) {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, nil //nolint:nilerr // no nft tool: nothing to compare
	}
	data, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return nil, nil //nolint:nilerr // nftables not usable here
	}
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" {
			out = append(out, f[1]+" "+f[2])
		}
	}
	return out, nil
}

// removeAddedIptables deletes the rules and chains that were added since
// before and belong to Kubernetes, CNI or the NetworkPolicy agent (their
// chain or target starts with KUBE- or CNI-, is the agent's chain, or they
// name the bridge). Rules go first (newest first), then the chains they
// used.
func removeAddedIptables(before HostState, bridge string) []error {
	now, err := iptablesRules()
	if err != nil {
		return []error{err}
	}
	had := make(map[string]bool, len(before.Iptables))
	for _, r := range before.Iptables {
		had[r] = true
	}
	ours := func(line string) bool {
		return strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(line, networkPolicyChain) ||
			strings.Contains(line, bridge) || strings.Contains(line, "cni0")
	}
	var errs []error
	var chains []string
	for i := len(now) - 1; i >= 0; i-- {
		r := now[i]
		if had[r] {
			continue
		}
		f := strings.SplitN(r, " ", 3)
		if len(f) < 3 || !ours(f[2]) {
			continue
		}
		family, table, line := f[0], f[1], f[2]
		if strings.HasPrefix(line, ":") {
			chains = append(chains, r)
			continue
		}
		args, err := splitRule(strings.TrimPrefix(line, "-A "))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cmd := append([]string{"-w", "-t", table, "-D"}, args...)
		if out, err := exec.Command(family, cmd...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %v: %s", family, strings.Join(cmd, " "), err, out))
		}
	}
	return append(errs, removeChains(chains)...)
}

// removeNewEmptyTables deletes the iptables tables that did not exist
// before and now hold nothing but empty built-in chains: with the
// nf_tables backend, the first use of a table creates it in the kernel.
func removeNewEmptyTables(before HostState) []error {
	now, err := iptablesRules()
	if err != nil {
		return []error{err}
	}
	had := map[string]bool{}
	for _, r := range before.Iptables {
		f := strings.SplitN(r, " ", 3)
		had[f[0]+" "+f[1]] = true
	}
	builtin := map[string]bool{"PREROUTING": true, "INPUT": true, "FORWARD": true, "OUTPUT": true, "POSTROUTING": true}
	empty := map[string]bool{}
	for _, r := range now {
		f := strings.SplitN(r, " ", 3)
		key := f[0] + " " + f[1]
		if had[key] {
			continue
		}
		if _, seen := empty[key]; !seen {
			empty[key] = true
		}
		chain := strings.Fields(strings.TrimPrefix(f[2], ":"))
		if !strings.HasPrefix(f[2], ":") || !builtin[chain[0]] || len(chain) < 2 || chain[1] != "ACCEPT" {
			empty[key] = false
		}
	}
	var errs []error
	for key, isEmpty := range empty {
		if !isEmpty {
			continue
		}
		family, table, _ := strings.Cut(key, " ")
		nftFamily := "ip"
		if family == "ip6tables" {
			nftFamily = "ip6"
		}
		if out, err := exec.Command("nft", "delete", "table", nftFamily, table).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("nft delete table %s %s: %v: %s", nftFamily, table, err, out))
		}
	}
	return errs
}

// removeChains flushes and deletes iptables chains given as snapshot lines
// ("<binary> <table> :<chain> <policy>").
func removeChains(chains []string) []error {
	var errs []error
	for _, r := range chains {
		f := strings.SplitN(r, " ", 3)
		family, table := f[0], f[1]
		chain := strings.Fields(strings.TrimPrefix(f[2], ":"))[0]
		for _, op := range []string{"-F", "-X"} {
			if out, err := exec.Command(family, "-w", "-t", table, op, chain).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s %s %s: %v: %s", family, table, op, chain, err, out))
			}
		}
	}
	return errs
}

// splitRule splits an iptables-save rule into arguments: words separated
// by spaces, double-quoted strings (with backslash escapes) kept whole.
func splitRule(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, inQuote := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQuote = !inQuote
			inWord = true
		case c == ' ' && !inQuote:
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unbalanced quote in iptables rule %q", s)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// processesReferring returns the PIDs of processes whose command line
// mentions any of the given strings (for example the containerd socket of a
// cluster, which every shim it started carries in its arguments).
func processesReferring(needles ...string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		cmdline := string(bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
		for _, n := range needles {
			if n != "" && strings.Contains(cmdline, n) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
