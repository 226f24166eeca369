package testbed

// Tearing the real node down: its pods, containerd, and what it added to
// the machine (also after a test process that died without Stop).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	criclient "k8s.io/cri-client/pkg"
)

// removePodSandboxes stops and removes every pod sandbox through the CRI
// (which tears down each pod's network with CNI DEL), once the kubelet is
// gone so it cannot start them again.
func (n *realNode) removePodSandboxes() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs, err := criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + n.sock).
		WithConnectionTimeout(10 * time.Second).Build(ctx)
	if err != nil {
		return err
	}
	sandboxes, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing pod sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range sandboxes {
		if err := rs.StopPodSandbox(ctx, sb.Id); err != nil {
			errs = append(errs, fmt.Errorf("stopping sandbox of %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
		}
		if err := rs.RemovePodSandbox(ctx, sb.Id); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox of %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// stopNode runs when Stop reaches containerd (the kubelet, kube-proxy and
// CoreDNS are stopped already): it removes the pods, stops containerd and
// removes what the node added to the machine.
func (c *Cluster) stopNode() {
	n := c.node
	if n.container != nil {
		if done, _ := n.container.Exited(); !done {
			if err := n.removePodSandboxes(); err != nil {
				c.logf("removing pods: %v", err)
			}
		}
		n.container.Stop(20 * time.Second)
	}
	for _, err := range cleanHost(n.state) {
		fmt.Fprintf(os.Stderr, "testbed: cleaning up the real node: %v\n", err)
	}
	_ = os.Remove(nodeStatePath)
	if n.lock != nil {
		_ = n.lock.Close()
	}
}

// recoverStaleNode cleans up after a real node whose test process died
// without Stop (its components died with it, but container shims, mounts,
// the bridge and firewall rules outlive it).
func recoverStaleNode(binDir string, logf func(string, ...any)) error {
	data, err := os.ReadFile(nodeStatePath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var s nodeState
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%s: %w", nodeStatePath, err)
	}
	if s.KubeProxy == "" {
		s.KubeProxy = filepath.Join(binDir, "kube-proxy")
	}
	logf("cleaning up after a real node that was not stopped (%s)", s.Dir)
	if errs := cleanHost(s); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if strings.Contains(s.Dir, "opsmith-testbed-") {
		_ = os.RemoveAll(s.Dir)
	}
	return os.Remove(nodeStatePath)
}

// cleanHost removes what a real node added to the machine: container
// processes and shims, mounts, kube-proxy's and CNI's firewall rules, the
// bridge, the kubepods cgroups and the provisioned volumes.
func cleanHost(s nodeState) []error {
	// Container processes, then their shims.
	killCgroupProcesses(kubepodsCgroups())
	for _, pid := range processesReferring(s.Socket, s.Dir+"/") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(processesReferring(s.Socket, s.Dir+"/"), 10*time.Second)

	errs := unmountUnder(s.Dir)
	errs = append(errs, removeNodeNetwork(s)...)
	// Cgroups the kubelet created, deepest first.
	for _, cg := range s.NewCgroups {
		errs = append(errs, removeCgroupTree(cg)...)
	}
	return append(errs, removeVolumes(s)...)
}

// unmountUnder detaches the mounts under dir (container root filesystems,
// network namespaces, pod volumes), deepest first.
func unmountUnder(dir string) []error {
	mounts, err := mountPoints()
	if err != nil {
		return []error{err}
	}
	var errs []error
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		if strings.HasPrefix(m, dir+"/") {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
			}
		}
	}
	return errs
}

// removeNodeNetwork removes the bridge and the firewall rules: kube-proxy
// removes its own iptables (and nftables) rules; whatever else Kubernetes,
// CNI or the NetworkPolicy agent added goes by comparison with the snapshot
// taken at start.
func removeNodeNetwork(s nodeState) []error {
	var errs []error
	if _, err := os.Stat(s.KubeProxy); err == nil {
		if out, err := exec.Command(s.KubeProxy, "--cleanup", "--v=0").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy --cleanup: %w: %s", err, lastLines(string(out), 5)))
		}
	}
	if _, err := net.InterfaceByName(s.Bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", s.Bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("deleting bridge %s: %w: %s", s.Bridge, err, out))
		}
	}
	errs = append(errs, removeAddedIptables(s.Before, s.Bridge)...)
	errs = append(errs, removeNewEmptyTables(s.Before)...)
	now, err := nftTables()
	if err != nil {
		return append(errs, err)
	}
	had := map[string]bool{}
	for _, t := range s.Before.Nftables {
		had[t] = true
	}
	for _, t := range now {
		// kube-proxy's tables, and the NetworkPolicy agent's (upstream's
		// table, or the probe of nftables' queue expression) when it was
		// killed before it removed them.
		if !had[t] && (strings.HasSuffix(t, " kube-proxy") || t == "inet "+networkPolicyTable || t == "inet "+nftQueueProbeTable) {
			f := strings.Fields(t)
			if out, err := exec.Command("nft", "delete", "table", f[0], f[1]).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("nft delete table %s: %w: %s", t, err, out))
			}
		}
	}
	return errs
}

// removeVolumes deletes the directories of the volumes provisioned while
// the node ran (their mounts are gone: see unmountUnder).
func removeVolumes(s nodeState) []error {
	if s.VolumeDir == "" || !strings.HasPrefix(s.VolumeDir, s.Dir+"/") {
		return nil
	}
	if err := os.RemoveAll(s.VolumeDir); err != nil {
		return []error{fmt.Errorf("removing the node's volumes: %w", err)}
	}
	return nil
}

// kubepodsCgroups are the directories the kubelet (cgroupfs driver) puts
// pods under, one per mounted cgroup hierarchy.
func kubepodsCgroups() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup/kubepods"} // cgroup v2
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		info, err := os.Lstat(filepath.Join("/sys/fs/cgroup", e.Name()))
		if err != nil || !info.IsDir() { // skip cpu -> cpu,cpuacct symlinks
			continue
		}
		out = append(out, filepath.Join("/sys/fs/cgroup", e.Name(), "kubepods"))
	}
	return out
}

func killCgroupProcesses(roots []string) {
	for _, root := range roots {
		var procFiles []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() == "cgroup.procs" {
				procFiles = append(procFiles, path)
			}
			return nil // best effort: a cgroup may vanish while walking
		})
		for _, path := range procFiles {
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			for f := range strings.FieldsSeq(string(data)) {
				var pid int
				if _, err := fmt.Sscanf(f, "%d", &pid); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
}

func removeCgroupTree(root string) []error {
	var dirs []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	var errs []error
	deadline := time.Now().Add(10 * time.Second)
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			err := syscall.Rmdir(dirs[i])
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
				break
			}
			time.Sleep(100 * time.Millisecond) // its last processes are still exiting
		}
	}
	return errs
}

func waitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
