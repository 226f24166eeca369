package images

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParsePrintURIs(t *testing.T) {
	out := []byte(`'http://deb.example/pool/main/r/redis/redis-tools_7.0.15-1%7edeb12u7_amd64.deb' redis-tools_5%3a7.0.15-1~deb12u7_amd64.deb 991888 SHA256:3c8c
'http://deb.example/pool/main/g/glibc/libc6_2.36-9%2bdeb12u14_amd64.deb' libc6_2.36-9+deb12u14_amd64.deb 2759320 SHA256:ba4f
`)
	got, err := parsePrintURIs(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []DebPackage{
		{Name: "redis-tools", Version: "5:7.0.15-1~deb12u7", File: "redis-tools_5%3a7.0.15-1~deb12u7_amd64.deb", SHA256: "3c8c"},
		{Name: "libc6", Version: "2.36-9+deb12u14", File: "libc6_2.36-9+deb12u14_amd64.deb", SHA256: "ba4f"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, err := parsePrintURIs([]byte("'http://x/y.deb' y_1_amd64.deb 10 MD5Sum:abc\n")); err == nil {
		t.Error("a line without SHA256 was accepted")
	}
}

func TestUpstreamVersion(t *testing.T) {
	for version, want := range map[string]string{
		"5:7.0.15-1~deb12u7":    "7.0.15",
		"1:1.35.0-4+deb12u1+b1": "1.35.0",
		"2.36-9+deb12u14":       "2.36",
		"1.2.3":                 "1.2.3",
		"1:2.0-rc1-3":           "2.0-rc1",
	} {
		if got := (DebPackage{Version: version}).UpstreamVersion(); got != want {
			t.Errorf("UpstreamVersion(%s) = %s, want %s", version, got, want)
		}
	}
}

func TestParseDepends(t *testing.T) {
	out := []byte(`redis-tools
  Depends: adduser
  Depends: libc6
 |Depends: libsystemd0
    libelogind0
  Depends: <libfoo-virtual>
  Suggests: ruby-redis
libsystemd0
  PreDepends: libzstd1:any
  Depends: libcap2
`)
	got, err := parseDepends(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"redis-tools": {"adduser", "libc6", "libsystemd0"},
		"libsystemd0": {"libzstd1", "libcap2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestParseLoaderList(t *testing.T) {
	out := []byte("\tlinux-vdso.so.1 (0x00007ffd)\n" +
		"\tlibssl.so.3 => /stage/usr/lib/x86_64-linux-gnu/libssl.so.3 (0x00007f1)\n" +
		"\tlibc.so.6 => /stage/lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n")
	got, err := parseLoaderList(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/stage/usr/lib/x86_64-linux-gnu/libssl.so.3", "/stage/lib/x86_64-linux-gnu/libc.so.6"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := parseLoaderList([]byte("\tlibjemalloc.so.2 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n")); err == nil {
		t.Error("a missing library was accepted")
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"lib/x86_64-linux-gnu", "lib64", "usr"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "lib/x86_64-linux-gnu/ld-2.36.so"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	// Absolute targets are inside root, not on the host.
	for link, target := range map[string]string{
		"lib64/ld-linux-x86-64.so.2":                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
		"lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "ld-2.36.so",
		"usr/lib": "../lib",
		"loop":    "loop",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	want := filepath.Join(root, "lib/x86_64-linux-gnu/ld-2.36.so")
	for _, p := range []string{"/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/ld-2.36.so"} {
		got, err := resolveIn(root, p)
		if err != nil || got != want {
			t.Errorf("resolveIn(%s) = %s, %v, want %s", p, got, err, want)
		}
	}
	if _, err := resolveIn(root, "/loop"); err == nil {
		t.Error("a symlink loop resolved")
	}
	if _, err := resolveIn(root, "/lib64/missing"); err == nil {
		t.Error("a missing file resolved")
	}
}
