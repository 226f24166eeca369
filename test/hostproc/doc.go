// Package hostproc runs real data-service processes (etcd members, Redis
// servers, later OpenSearch nodes) on the test machine, without
// Kubernetes, so that domain packages are tested against real servers.
//
// A Group belongs to one test. Each process it starts:
//
//   - listens on free loopback ports (FreePorts), chosen by the caller or
//     by a typed helper such as StartRedis;
//   - writes its output to <name>.log in a directory of t.TempDir(), kept
//     across restarts (each run starts with a header line), whose last
//     lines are printed when the test fails;
//   - runs in its own process group, so Kill (SIGKILL, as a crash) and Stop
//     (SIGTERM, then SIGKILL after a deadline) reach its children too, and
//     gets SIGKILL from the kernel if the test binary dies first;
//   - can be restarted with the same command line, port and data directory
//     (Restart), which is how a test proves that a server keeps its identity
//     and data across a crash.
//
// Everything a Group started is stopped in t.Cleanup, also when the test
// fails or calls t.Fatal, before t.TempDir's directories are removed.
//
// The typed helpers start an etcd member (EtcdMember) or a redis-server
// (StartRedis, with the binary found by FindRedisServer: the
// $OPSMITH_REDIS_SERVER variable, then Debian's redis-server that
// `make images` unpacks into bin/images/debian/redis, then PATH).
package hostproc
