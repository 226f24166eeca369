package hostproc

// EtcdMember is the configuration of one etcd server process.
type EtcdMember struct {
	// Name is the member's name (--name); the process is "etcd <Name>" in
	// its Group.
	Name string
	// DataDir is the member's data directory (--data-dir).
	DataDir string
	// ClientURL and PeerURL are listened on and advertised.
	ClientURL, PeerURL string
	// InitialCluster (name=peerURL,...), InitialClusterState ("new" or
	// "existing") and InitialClusterToken bootstrap the member; they are
	// left out when empty.
	InitialCluster, InitialClusterState, InitialClusterToken string
	// Args are further flags, for example --heartbeat-interval.
	Args []string
}

// Spec is the command line that runs the member with the etcd binary bin.
func (m EtcdMember) Spec(bin string) Spec {
	args := []string{
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
	}
	for _, f := range [][2]string{
		{"--initial-cluster", m.InitialCluster},
		{"--initial-cluster-state", m.InitialClusterState},
		{"--initial-cluster-token", m.InitialClusterToken},
	} {
		if f[1] != "" {
			args = append(args, f[0], f[1])
		}
	}
	return Spec{Name: "etcd " + m.Name, Path: bin, Args: append(args, m.Args...)}
}

// StartEtcd starts the member in g. It does not wait for it: a member that
// joins an existing cluster serves only once it has caught up.
func StartEtcd(g *Group, bin string, m EtcdMember) (*Proc, error) {
	return g.Start(m.Spec(bin))
}
