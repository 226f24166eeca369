package testbed

import (
	"reflect"
	"testing"
)

func TestSplitRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`KUBE-SERVICES -d 10.0.0.1/32 -p tcp -j KUBE-SVC-NPX46M4PTMTKRN6Y`,
			[]string{"KUBE-SERVICES", "-d", "10.0.0.1/32", "-p", "tcp", "-j", "KUBE-SVC-NPX46M4PTMTKRN6Y"}},
		{`KUBE-SERVICES -m comment --comment "default/kubernetes:https cluster IP" -j X`,
			[]string{"KUBE-SERVICES", "-m", "comment", "--comment", "default/kubernetes:https cluster IP", "-j", "X"}},
		{`POSTROUTING -m comment --comment "a \"quoted\" word" -j MASQUERADE`,
			[]string{"POSTROUTING", "-m", "comment", "--comment", `a "quoted" word`, "-j", "MASQUERADE"}},
		{`X --comment ""`, []string{"X", "--comment", ""}},
	} {
		got, err := splitRule(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitRule(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := splitRule(`X --comment "open`); err == nil {
		t.Error("unbalanced quote accepted")
	}
}

func TestHostStateAdded(t *testing.T) {
	before := HostState{
		Links:    []string{"lo", "eth0"},
		Mounts:   []string{"/", "/proc"},
		Iptables: []string{"iptables filter :INPUT ACCEPT"},
	}
	after := HostState{
		Links:    []string{"lo", "eth0", "opsmith0"},
		Mounts:   []string{"/"},
		Iptables: []string{"iptables filter :INPUT ACCEPT", "iptables nat :KUBE-SERVICES -"},
		Nftables: []string{"ip kube-proxy"},
	}
	want := []string{"link opsmith0", "iptables iptables nat :KUBE-SERVICES -", "nftables ip kube-proxy"}
	if got := before.Added(after); !reflect.DeepEqual(got, want) {
		t.Errorf("Added = %q, want %q", got, want)
	}
	if got := after.Added(after); len(got) != 0 {
		t.Errorf("a state compared with itself added %q", got)
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/var/lib/with\040space`); got != "/var/lib/with space" {
		t.Errorf("got %q", got)
	}
}
