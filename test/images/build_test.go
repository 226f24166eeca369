package images

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestNormalizeAddsParentsAndSorts(t *testing.T) {
	files, err := normalize([]File{
		Text("/usr/bin/tool", "x", 0o755),
		Symlink("/bin/sh", "/usr/bin/tool"),
		Dir("/usr", 0o700, 7),
		Text("/a-b", "", 0o644),
		Dir("/a", 0o755, 0),
		Text("/a/b", "", 0o644),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	want := []string{"/a", "/a/b", "/a-b", "/bin", "/bin/sh", "/usr", "/usr/bin", "/usr/bin/tool"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("paths = %v, want %v", got, want)
	}
	if files[3].Mode != fs.ModeDir|0o755 || files[3].UID != 0 {
		t.Errorf("added parent /bin = %v uid %d, want a root-owned 0755 directory", files[3].Mode, files[3].UID)
	}
	if files[5].Mode != fs.ModeDir|0o700 || files[5].UID != 7 {
		t.Errorf("listed /usr = %v uid %d, want it kept as listed", files[5].Mode, files[5].UID)
	}
}

func TestNormalizeRejectsBadEntries(t *testing.T) {
	for name, files := range map[string][]File{
		"relative path":     {Text("etc/passwd", "", 0o644)},
		"unclean path":      {Text("/etc/../passwd", "", 0o644)},
		"root":              {Dir("/", 0o755, 0)},
		"duplicate":         {Text("/x", "", 0o644), Text("/x", "", 0o644)},
		"under a file":      {Text("/x", "", 0o644), Text("/x/y", "", 0o644)},
		"dir with content":  {{Path: "/d", Mode: fs.ModeDir | 0o755, Data: []byte("x")}},
		"symlink no target": {{Path: "/l", Mode: fs.ModeSymlink | 0o777}},
		"device":            {{Path: "/dev/null", Mode: fs.ModeDevice | 0o666}},
	} {
		if _, err := normalize(files); err == nil {
			t.Errorf("%s: normalize accepted %+v", name, files)
		}
	}
}

func TestLayerIsDeterministic(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	layer := func(files ...File) string {
		t.Helper()
		norm, err := normalize(files)
		if err != nil {
			t.Fatal(err)
		}
		_, diffID, err := buildLayer(norm)
		if err != nil {
			t.Fatal(err)
		}
		return diffID
	}
	base := layer(FromHost("/bin/x", src, 0o755), Dir("/tmp", fs.ModeSticky|0o777, 0))
	if again := layer(Dir("/tmp", fs.ModeSticky|0o777, 0), FromHost("/bin/x", src, 0o755)); again != base {
		t.Errorf("the same files in another order give diff ID %s, want %s", again, base)
	}
	for what, files := range map[string][]File{
		"mode":    {FromHost("/bin/x", src, 0o750), Dir("/tmp", fs.ModeSticky|0o777, 0)},
		"owner":   {{Path: "/bin/x", Mode: 0o755, Source: src, UID: 1}, Dir("/tmp", fs.ModeSticky|0o777, 0)},
		"sticky":  {FromHost("/bin/x", src, 0o755), Dir("/tmp", 0o777, 0)},
		"content": {Text("/bin/x", "other", 0o755), Dir("/tmp", fs.ModeSticky|0o777, 0)},
	} {
		if got := layer(files...); got == base {
			t.Errorf("changing the %s does not change the diff ID", what)
		}
	}
}

func TestBuildWritesLoadableArchiveAndSkipsUnchanged(t *testing.T) {
	out := t.TempDir()
	spec := Spec{
		Name: "tiny",
		Ref:  "opsmith.local/tiny:1",
		Config: Config{
			Entrypoint:   []string{"/bin/tool"},
			Cmd:          []string{"--flag"},
			Env:          []string{"A=b"},
			User:         nonRootUser,
			WorkingDir:   "/work",
			ExposedPorts: []string{"8080/tcp"},
		},
		Files: append(baseFiles("/sbin/nologin"),
			Text("/bin/tool", "#!/bin/true\n", 0o755),
			Symlink("/bin/alias", "tool"),
			Dir("/work", 0o750, NonRootUID),
		),
	}
	first, err := Build(spec, out)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Built || first.Archive != filepath.Join(out, "tiny.tar") {
		t.Fatalf("first build = %+v, want tiny.tar written", first)
	}

	tag, err := name.NewTag(spec.Ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(first.Archive, &tag)
	if err != nil {
		t.Fatalf("loading the archive by its ref: %v", err)
	}
	if d, _ := img.Digest(); d.String() != first.Digest {
		t.Errorf("archive digest %s, Build reported %s", d, first.Digest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !reflect.DeepEqual(c.Entrypoint, spec.Config.Entrypoint) || !reflect.DeepEqual(c.Cmd, spec.Config.Cmd) ||
		c.User != "65532:65532" || c.WorkingDir != "/work" {
		t.Errorf("config = %+v", c)
	}
	if !reflect.DeepEqual(c.Env, []string{DefaultPath, "A=b"}) {
		t.Errorf("env = %v", c.Env)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports = %v", c.ExposedPorts)
	}
	if !strings.HasPrefix(c.Labels[InputsLabel], "sha256:") {
		t.Errorf("labels = %v", c.Labels)
	}

	root := t.TempDir()
	if err := ExtractRootfs(img, root); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "bin/tool")); err != nil || string(b) != "#!/bin/true\n" {
		t.Errorf("/bin/tool = %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(root, "bin/alias")); err != nil || l != "tool" {
		t.Errorf("/bin/alias -> %q, %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "tmp")); err != nil || fi.Mode() != fs.ModeDir|fs.ModeSticky|0o777 {
		t.Errorf("/tmp: %v, %v", fi.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/passwd")); err != nil || !strings.Contains(string(b), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd = %q, %v", b, err)
	}

	before, err := os.Stat(first.Archive)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Build(spec, out)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(first.Archive)
	if second.Built || second.Digest != first.Digest || second.ID != first.ID || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("unchanged inputs: %+v (archive modified %v), want the archive left alone", second, !after.ModTime().Equal(before.ModTime()))
	}

	// Any change of inputs rebuilds: a file, the config, the ref.
	changed := spec
	changed.Files = append(append([]File(nil), spec.Files...), Text("/etc/extra", "x", 0o644))
	third, err := Build(changed, out)
	if err != nil {
		t.Fatal(err)
	}
	if !third.Built || third.Digest == first.Digest {
		t.Errorf("new file: %+v, want a new image", third)
	}
	changed.Config.User = "0:0"
	fourth, err := Build(changed, out)
	if err != nil {
		t.Fatal(err)
	}
	if !fourth.Built || fourth.ID == third.ID {
		t.Errorf("new user: %+v, want a new image", fourth)
	}
	changed.Ref = "opsmith.local/tiny:2"
	fifth, err := Build(changed, out)
	if err != nil {
		t.Fatal(err)
	}
	if !fifth.Built || fifth.ID != fourth.ID {
		t.Errorf("new ref: %+v, want the same image written again under the new tag", fifth)
	}

	// Rebuilding the first spec gives the first image again, byte for byte.
	again, err := Build(spec, out)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != first.Digest {
		t.Errorf("rebuilt digest %s, first %s: builds are not reproducible", again.Digest, first.Digest)
	}
}

func TestBuildRejectsBadSpecs(t *testing.T) {
	for name, spec := range map[string]Spec{
		"no tag":     {Name: "x", Ref: "opsmith.local/x", Config: Config{Cmd: []string{"/x"}}},
		"no command": {Name: "x", Ref: "opsmith.local/x:1"},
		"bad file":   {Name: "x", Ref: "opsmith.local/x:1", Config: Config{Cmd: []string{"/x"}}, Files: []File{Text("x", "", 0o644)}},
		"no source":  {Name: "x", Ref: "opsmith.local/x:1", Config: Config{Cmd: []string{"/x"}}, Files: []File{FromHost("/x", "/nonexistent/opsmith", 0o755)}},
	} {
		if _, err := Build(spec, t.TempDir()); err == nil {
			t.Errorf("%s: Build accepted %+v", name, spec)
		}
	}
}

func TestIndexRoundTrip(t *testing.T) {
	dir := t.TempDir()
	results := []Result{
		{Name: "b", Ref: "opsmith.local/b:1", Archive: filepath.Join(dir, "b.tar"), Digest: "sha256:2", ID: "sha256:20", Built: true},
		{Name: "a", Ref: "opsmith.local/a:1", Archive: filepath.Join(dir, "a.tar"), Digest: "sha256:1", ID: "sha256:10"},
	}
	if err := WriteIndex(dir, results); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"archive": "a.tar"`)) || bytes.Contains(raw, []byte("Built")) {
		t.Errorf("images.json = %s, want archives relative to its directory", raw)
	}
	got, err := ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a" || got[0].Archive != filepath.Join(dir, "a.tar") || got[1].Digest != "sha256:2" {
		t.Errorf("ReadIndex = %+v", got)
	}
	if e, ok := Lookup(got, "opsmith.local/b:1"); !ok || e.ID != "sha256:20" {
		t.Errorf("Lookup = %+v, %v", e, ok)
	}
	if _, ok := Lookup(got, "opsmith.local/c:1"); ok {
		t.Error("Lookup found an unknown ref")
	}
}
