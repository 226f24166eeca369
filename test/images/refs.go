package images

// Versions of the software in the images. The etcd versions are those the
// modules hack/tools/etcd and hack/tools/etcd35 pin; the Redis and busybox
// versions are the upstream versions of Debian bookworm's packages (the
// build fails if the downloaded package has another one).
const (
	// Etcd36Version is the etcd server and etcdctl version of Etcd36Ref.
	Etcd36Version = "3.6.16"
	// Etcd35Version is the etcd server and etcdctl version of Etcd35Ref.
	Etcd35Version = "3.5.35"
	// RedisVersion is the upstream version of Debian's redis-server in
	// RedisRef.
	RedisVersion = "7.0.15"
	// BusyboxVersion is the upstream major.minor version of Debian's
	// busybox-static in BusyboxRef.
	BusyboxVersion = "1.35"
)

// References of the images, as containerd lists them after an import.
const (
	// PauseRef is the pod sandbox image: a static program that reaps
	// children and exits on SIGTERM or SIGINT. Set it as containerd's
	// sandbox_image.
	PauseRef = "registry.k8s.io/pause:3.10"
	// ManagerRef is the opsmith manager, /manager, run as 65532.
	ManagerRef = "opsmith.local/manager:dev"
	// EtcdRepository is the repository of the upstream etcd images, whose
	// tags are v<version>.
	EtcdRepository = "gcr.io/etcd-development/etcd"
	// Etcd36Ref has /usr/local/bin/etcd and /usr/local/bin/etcdctl of etcd
	// Etcd36Version.
	Etcd36Ref = EtcdRepository + ":v" + Etcd36Version
	// Etcd35Ref has /usr/local/bin/etcd and /usr/local/bin/etcdctl of etcd
	// Etcd35Version.
	Etcd35Ref = EtcdRepository + ":v" + Etcd35Version
	// RedisRef has redis-server, redis-sentinel, redis-check-aof,
	// redis-check-rdb and redis-cli from Debian's packages with the shared
	// libraries they load. Unlike the Docker Hub image it has no entrypoint
	// script: its default command is `redis-server --protected-mode no`, and
	// a pod that passes options must give the whole command
	// (command: [redis-server, ...]), not only args.
	RedisRef = "docker.io/library/redis:" + RedisVersion
	// BusyboxRef is Debian's static busybox with a link for each applet
	// (sh, ls, cat, sleep, wget, nc, ...); default command sh.
	BusyboxRef = "docker.io/library/busybox:" + BusyboxVersion
	// HTTPEchoRef is a small HTTP server listening on $PORT (default
	// 8080): GET / answers JSON with the pod's host name, /healthz 200.
	HTTPEchoRef = "opsmith.local/http-echo:1"
)

// NonRootUID is the user (and group) every image runs as by default.
const NonRootUID = 65532
