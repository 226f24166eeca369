package images

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DebPackage is one Debian package file in the download cache.
type DebPackage struct {
	// Name and Version as Debian spells them, for example redis-tools and
	// 5:7.0.15-1~deb12u7.
	Name, Version string
	// File is the .deb in the cache directory.
	File string
	// SHA256 is the archive's checksum of File.
	SHA256 string
}

// UpstreamVersion is the version without the Debian epoch and revision:
// 7.0.15 for 5:7.0.15-1~deb12u7.
func (p DebPackage) UpstreamVersion() string {
	v := p.Version
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		v = v[:i]
	}
	return v
}

// Apt downloads Debian packages with apt-get download into a cache
// directory, using the machine's package lists. It runs apt-get update
// once, only when resolving or downloading fails (no or outdated lists).
//
// Each question to apt costs about a second of CPU, so its answers (which
// file is the candidate of a package, what a package depends on) are kept
// in CacheDir/apt-answers.json for as long as the package lists and apt's
// configuration stay the same.
type Apt struct {
	// CacheDir keeps the .deb files between runs.
	CacheDir string
	// Log receives progress messages.
	Log     io.Writer
	updated bool
	answers *aptAnswers
}

// aptAnswers are apt's answers under one state of its lists and
// configuration (Fingerprint).
type aptAnswers struct {
	Fingerprint string `json:"fingerprint"`
	// Packages by name, File without its directory.
	Packages map[string]DebPackage `json:"packages"`
	Depends  map[string][]string   `json:"depends"`
}

const answersFile = "apt-answers.json"

// memo returns the answers valid for the current state of apt, loading
// them from the cache directory the first time.
func (a *Apt) memo() (*aptAnswers, error) {
	if a.answers != nil {
		return a.answers, nil
	}
	fp, err := aptFingerprint()
	if err != nil {
		return nil, err
	}
	ans := &aptAnswers{}
	if b, err := os.ReadFile(filepath.Join(a.CacheDir, answersFile)); err == nil {
		_ = json.Unmarshal(b, ans)
	}
	if ans.Fingerprint != fp {
		ans = &aptAnswers{Fingerprint: fp}
	}
	if ans.Packages == nil {
		ans.Packages = map[string]DebPackage{}
	}
	if ans.Depends == nil {
		ans.Depends = map[string][]string{}
	}
	a.answers = ans
	return ans, nil
}

func (a *Apt) saveMemo() error {
	b, err := json.MarshalIndent(a.answers, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(a.CacheDir, answersFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(a.CacheDir, answersFile))
}

// aptFingerprint hashes the names, sizes and times of apt's package lists
// and configuration files: apt answers the same while it is unchanged.
func aptFingerprint() (string, error) {
	h := sha256.New()
	for _, root := range []string{"/var/lib/apt/lists", "/etc/apt"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
					return nil
				}
				return err
			}
			if d.IsDir() {
				if d.Name() == "partial" {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Name() == "lock" {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil // removed meanwhile
			}
			fmt.Fprintf(h, "%s %d %d\n", p, info.Size(), info.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Download makes sure the candidate version of each named package is in
// the cache, downloading only files that are missing or damaged, and
// returns them in the order asked.
func (a *Apt) Download(names ...string) ([]DebPackage, error) {
	if err := os.MkdirAll(a.CacheDir, 0o750); err != nil {
		return nil, err
	}
	pkgs, err := a.retryAfterUpdate(func() ([]DebPackage, error) {
		pkgs, err := a.resolve(names)
		if err != nil {
			return nil, err
		}
		return pkgs, a.fetchMissing(pkgs)
	})
	if err != nil {
		return nil, fmt.Errorf("downloading Debian packages %s: %w", strings.Join(names, " "), err)
	}
	return pkgs, nil
}

func (a *Apt) retryAfterUpdate(f func() ([]DebPackage, error)) ([]DebPackage, error) {
	pkgs, err := f()
	if err == nil || a.updated {
		return pkgs, err
	}
	fmt.Fprintf(a.Log, "apt: %v; running apt-get update and trying again\n", err)
	a.updated = true
	a.answers = nil // the lists change
	if out, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
		return nil, fmt.Errorf("%w (then apt-get update failed: %v: %s)", err, uerr, lastLines(out, 5))
	}
	return f()
}

// resolve returns the candidate version's file of each package, asking
// apt only about packages it did not answer for before: --print-uris run
// in an empty directory lists every package without downloading.
func (a *Apt) resolve(names []string) ([]DebPackage, error) {
	memo, err := a.memo()
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, n := range names {
		if _, ok := memo.Packages[n]; !ok {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		if err := a.askPrintURIs(memo, unknown); err != nil {
			return nil, err
		}
	}
	pkgs := make([]DebPackage, 0, len(names))
	for _, n := range names {
		p := memo.Packages[n]
		p.File = filepath.Join(a.CacheDir, p.File)
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

func (a *Apt) askPrintURIs(memo *aptAnswers, names []string) error {
	empty, err := os.MkdirTemp("", "opsmith-apt-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(empty) }()
	out, err := aptCommand(empty, append([]string{"download", "--print-uris"}, names...)...)
	if err != nil {
		return err
	}
	pkgs, err := parsePrintURIs(out)
	if err != nil {
		return err
	}
	byName := map[string]DebPackage{}
	for _, p := range pkgs {
		p.File = filepath.Base(p.File)
		byName[p.Name] = p
	}
	for _, n := range names {
		p, ok := byName[n]
		if !ok {
			return fmt.Errorf("apt-get download --print-uris did not list %s:\n%s", n, out)
		}
		memo.Packages[n] = p
	}
	return a.saveMemo()
}

// parsePrintURIs reads lines of the form
//
//	'<uri>' <file> <size> SHA256:<hex>
//
// where file is <name>_<version with %3a for :>_<arch>.deb.
func parsePrintURIs(out []byte) ([]DebPackage, error) {
	var pkgs []DebPackage
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 || !strings.HasPrefix(fields[0], "'") {
			continue
		}
		file, sum := fields[1], fields[3]
		if !strings.HasPrefix(sum, "SHA256:") {
			return nil, fmt.Errorf("no SHA256 checksum for %s in %q", file, sc.Text())
		}
		parts := strings.Split(strings.TrimSuffix(file, ".deb"), "_")
		if len(parts) != 3 {
			return nil, fmt.Errorf("unexpected package file name %q", file)
		}
		version, err := url.PathUnescape(parts[1])
		if err != nil {
			return nil, fmt.Errorf("package file name %q: %w", file, err)
		}
		pkgs = append(pkgs, DebPackage{Name: parts[0], Version: version, File: file, SHA256: strings.TrimPrefix(sum, "SHA256:")})
	}
	return pkgs, sc.Err()
}

func (a *Apt) fetchMissing(pkgs []DebPackage) error {
	var missing []string
	for _, p := range pkgs {
		ok, err := fileHasSHA256(p.File, p.SHA256)
		if err != nil {
			return err
		}
		if !ok {
			_ = os.Remove(p.File)
			missing = append(missing, p.Name+"="+p.Version)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Fprintf(a.Log, "apt: downloading %s\n", strings.Join(missing, " "))
	if _, err := aptCommand(a.CacheDir, append([]string{"download"}, missing...)...); err != nil {
		return err
	}
	for _, p := range pkgs {
		ok, err := fileHasSHA256(p.File, p.SHA256)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s does not have the checksum apt listed (%s)", p.File, p.SHA256)
		}
	}
	return nil
}

// aptCommand runs apt-get in dir. apt's sandbox user cannot write to a
// directory owned by root, so downloads run as the calling user.
func aptCommand(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("apt-get", append([]string{"-q", "-o", "APT::Sandbox::User=" + currentUser()}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.Bytes(), 5))
	}
	return out, nil
}

func currentUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Geteuid())
}

// LibraryClosure returns the library packages (named lib*) that the named
// packages depend on, directly or through other library packages, sorted.
// Dependencies on anything else (adduser, init scripts, virtual packages)
// are not followed: an image needs the shared objects only.
func (a *Apt) LibraryClosure(names ...string) ([]string, error) {
	if err := os.MkdirAll(a.CacheDir, 0o750); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	frontier := names
	for len(frontier) > 0 {
		deps, err := a.depends(frontier)
		if err != nil {
			return nil, err
		}
		var next []string
		for _, p := range frontier {
			for _, d := range deps[p] {
				if strings.HasPrefix(d, "lib") && !seen[d] {
					seen[d] = true
					next = append(next, d)
				}
			}
		}
		frontier = next
	}
	libs := make([]string, 0, len(seen))
	for l := range seen {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	return libs, nil
}

// depends returns the dependencies of each package, asking apt only
// about packages it did not answer for before.
func (a *Apt) depends(names []string) (map[string][]string, error) {
	_, err := a.retryAfterUpdate(func() ([]DebPackage, error) {
		memo, err := a.memo()
		if err != nil {
			return nil, err
		}
		var unknown []string
		for _, n := range names {
			if _, ok := memo.Depends[n]; !ok {
				unknown = append(unknown, n)
			}
		}
		if len(unknown) == 0 {
			return nil, nil
		}
		deps, err := directDepends(unknown)
		if err != nil {
			return nil, err
		}
		for _, n := range unknown {
			memo.Depends[n] = append([]string{}, deps[n]...)
		}
		return nil, a.saveMemo()
	})
	if err != nil {
		return nil, err
	}
	return a.answers.Depends, nil
}

// directDepends returns the Depends and Pre-Depends of each package, as
// apt-cache depends prints them: a line per package at column 0, then
// indented "Depends: name" lines ("|Depends:" for an alternative) and
// further indented lines naming the packages providing a virtual one.
func directDepends(names []string) (map[string][]string, error) {
	args := append([]string{"depends", "--no-recommends", "--no-suggests", "--no-conflicts",
		"--no-breaks", "--no-replaces", "--no-enhances"}, names...)
	cmd := exec.Command("apt-cache", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.Bytes(), 5))
	}
	return parseDepends(out)
}

// parseDepends reads apt-cache depends output; see directDepends.
func parseDepends(out []byte) (map[string][]string, error) {
	deps := map[string][]string{}
	current := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, " ") {
			current = strings.TrimSpace(line)
			continue
		}
		key, value, ok := strings.Cut(strings.TrimSpace(line), ": ")
		key = strings.TrimPrefix(key, "|")
		if !ok || (key != "Depends" && key != "PreDepends") || strings.HasPrefix(value, "<") {
			continue
		}
		name, _, _ := strings.Cut(value, ":")
		deps[current] = append(deps[current], name)
	}
	return deps, sc.Err()
}

// Unpack extracts the packages with dpkg -x into dir, replacing what was
// there, unless dir already holds exactly these package files (a stamp
// file lists them with their checksums).
func Unpack(pkgs []DebPackage, dir string) error {
	var stamp strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&stamp, "%s %s\n", filepath.Base(p.File), p.SHA256)
	}
	stampFile := filepath.Join(dir, ".unpacked")
	if old, err := os.ReadFile(stampFile); err == nil && string(old) == stamp.String() {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for _, p := range pkgs {
		if out, err := exec.Command("dpkg-deb", "-x", p.File, dir).CombinedOutput(); err != nil {
			return fmt.Errorf("unpacking %s: %w: %s", p.File, err, lastLines(out, 5))
		}
	}
	return os.WriteFile(stampFile, []byte(stamp.String()), 0o644)
}

func fileHasSHA256(path, want string) (bool, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == want, nil
}

// lastLines returns the last n lines of out, for error messages.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
