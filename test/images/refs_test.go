package images

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The etcd versions are written in three places: the constants, the tool
// modules that build the binaries and hack/images.mk, which names the
// binaries' directories. They must agree.
func TestEtcdVersionsMatchModulesAndMakefile(t *testing.T) {
	repo := filepath.Join("..", "..")
	for _, c := range []struct{ module, version, makeVar string }{
		{"hack/tools/etcd", Etcd36Version, "ETCD_36_VERSION"},
		{"hack/tools/etcd35", Etcd35Version, "ETCD_35_VERSION"},
	} {
		for _, mod := range []string{"go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3"} {
			got := requiredVersion(t, filepath.Join(repo, c.module, "go.mod"), mod)
			if got != "v"+c.version {
				t.Errorf("%s/go.mod requires %s %s, the image constant says %s", c.module, mod, got, c.version)
			}
		}
		if got := makeVariable(t, filepath.Join(repo, "hack", "images.mk"), c.makeVar); got != c.version {
			t.Errorf("hack/images.mk sets %s = %s, the image constant says %s", c.makeVar, got, c.version)
		}
	}
}

// requiredVersion returns the version of mod in a go.mod's require lines.
func requiredVersion(t *testing.T, gomod, mod string) string {
	t.Helper()
	f, err := os.Open(gomod)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == mod {
			return fields[1]
		}
	}
	t.Fatalf("%s does not require %s", gomod, mod)
	return ""
}

func makeVariable(t *testing.T, makefile, name string) string {
	t.Helper()
	b, err := os.ReadFile(makefile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":="); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s does not set %s", makefile, name)
	return ""
}
