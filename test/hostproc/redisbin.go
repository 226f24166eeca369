package hostproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"opsmith.io/opsmith/test/images"
)

// RedisServerEnv names a redis-server binary to use instead of the one
// `make images` unpacks.
const RedisServerEnv = "OPSMITH_REDIS_SERVER"

var goarch = runtime.GOARCH

// RedisRoot is where `make images` unpacks Debian's redis-server,
// redis-tools and the libraries they load (test/images' redis image is
// made of that tree): BinDir()/images/debian/redis.
func RedisRoot() string { return filepath.Join(BinDir(), "images", "debian", "redis") }

var (
	redisOnce sync.Once
	redisBin  Binary
	redisErr  error
)

// FindRedisServer returns the first redis-server that runs, from:
//
//  1. $OPSMITH_REDIS_SERVER (an error if it is set and does not run);
//  2. RedisRoot(), the Redis of the project's image (the same Debian
//     package), run with that tree's own loader and libraries; if the tree
//     is missing but `make images` left the .deb files in
//     bin/images/debian/cache, they are unpacked there first, as
//     `make images` does;
//  3. redis-server on PATH.
//
// The answer is computed once per test binary.
func FindRedisServer() (Binary, error) {
	redisOnce.Do(func() { redisBin, redisErr = findRedisServer() })
	return redisBin, redisErr
}

// RequireRedisServer returns FindRedisServer's binary. Under -short the
// test is skipped (it runs server processes); otherwise a missing
// redis-server fails it, saying how to get one.
func RequireRedisServer(t testing.TB) Binary {
	t.Helper()
	if testing.Short() {
		t.Skip("runs redis-server processes; -short runs unit tests only")
	}
	b, err := FindRedisServer()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func findRedisServer() (Binary, error) {
	if p := os.Getenv(RedisServerEnv); p != "" {
		b := Binary{Path: p, Source: "$" + RedisServerEnv}
		if err := checkRedisVersion(&b); err != nil {
			return Binary{}, fmt.Errorf("$%s=%s: %w", RedisServerEnv, p, err)
		}
		return b, nil
	}
	var tried []string
	b, err := imageRedisServer()
	if err == nil {
		return b, nil
	}
	tried = append(tried, fmt.Sprintf("%s: %v (`make images` unpacks Debian's redis-server there)", RedisRoot(), err))
	p, err := exec.LookPath("redis-server")
	if err != nil {
		tried = append(tried, "no redis-server on PATH (Debian: apt-get install redis-server)")
	} else {
		b = Binary{Path: p, Source: p}
		if err := checkRedisVersion(&b); err == nil {
			return b, nil
		}
		tried = append(tried, fmt.Sprintf("%s on PATH: %v", p, err))
	}
	return Binary{}, fmt.Errorf("no redis-server to run: $%s is not set; %s", RedisServerEnv, strings.Join(tried, "; "))
}

const redisServerPath = "usr/bin/redis-server"

// imageRedisServer is the redis-server of RedisRoot, unpacked from the
// package cache first when needed.
func imageRedisServer() (Binary, error) {
	root := RedisRoot()
	if _, err := os.Stat(filepath.Join(root, redisServerPath)); err != nil {
		if err := unpackRedis(filepath.Dir(filepath.Dir(root)), root); err != nil {
			return Binary{}, err
		}
	}
	b, err := unpackedProgram(root, redisServerPath)
	if err != nil {
		return Binary{}, err
	}
	return b, checkRedisVersion(&b)
}

// unpackRedis unpacks redis-server, redis-tools and their libraries from
// the .deb files `make images` keeps in imagesDir/debian/cache, under the
// lock `make images` takes, the way its Redis image does (test/images).
func unpackRedis(imagesDir, root string) error {
	cache := filepath.Join(imagesDir, "debian", "cache")
	if _, err := os.Stat(cache); err != nil {
		return fmt.Errorf("not unpacked, and no Debian package cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(imagesDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "hostproc: unpacking Debian's redis-server from %s into %s\n", cache, root)
	apt := &images.Apt{CacheDir: cache, Log: io.Discard}
	roots := []string{"redis-server", "redis-tools"}
	libs, err := apt.LibraryClosure(roots...)
	if err != nil {
		return err
	}
	pkgs, err := apt.Download(append(roots, libs...)...)
	if err != nil {
		return err
	}
	return images.Unpack(pkgs, root)
}

var redisVersionRE = regexp.MustCompile(`Redis server v=(\d+\.\d+\.\d+)`)

// checkRedisVersion runs the program with --version and records the
// version it reports.
func checkRedisVersion(b *Binary) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append(append([]string(nil), b.Args...), "--version")
	out, err := exec.CommandContext(ctx, b.Path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %w: %s", b.Source, err, strings.TrimSpace(string(out)))
	}
	m := redisVersionRE.FindSubmatch(out)
	if m == nil {
		return errors.New("--version printed no Redis server version: " + strings.TrimSpace(string(out)))
	}
	b.Version = string(m[1])
	return nil
}
