package images

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// interpreter returns the program interpreter (dynamic loader) an ELF
// executable asks for, or "" for a static executable.
func interpreter(file string) (string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", fmt.Errorf("reading ELF file %s: %w", file, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("reading the interpreter of %s: %w", file, err)
		}
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	return "", nil
}

// requireStatic fails unless file is a static ELF executable, as the
// Go programs of the images must be (CGO_ENABLED=0) to run without libc.
func requireStatic(file string) error {
	interp, err := interpreter(file)
	if err != nil {
		return err
	}
	if interp != "" {
		return fmt.Errorf("%s is dynamically linked (interpreter %s); build it with CGO_ENABLED=0", file, interp)
	}
	return nil
}

// resolveIn resolves p inside root as if root were /, following symlinks
// (absolute targets are taken relative to root), and returns the host path
// of the final file.
func resolveIn(root, p string) (string, error) {
	rest := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for hops := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		next := path.Join(cur, name)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", fmt.Errorf("resolving %s in %s: %w", p, root, err)
		}
		if fi.Mode().Type() != fs.ModeSymlink {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("resolving %s in %s: too many symlinks", p, root)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		rest = append(strings.Split(strings.TrimPrefix(path.Clean(target), "/"), "/"), rest...)
		cur = "/"
	}
	return filepath.Join(root, cur), nil
}

// sharedLibraries returns the files an executable of the unpacked tree
// root needs at run time: its dynamic loader and every shared library the
// loader maps, at the paths where the loader finds them (for example
// /lib/x86_64-linux-gnu/libc.so.6), with the packages' symlinks. The libraries are
// listed the way ldd does it, by running the loader with --list, but the
// loader is root's own and only root's library directories are searched
// first; a library found outside root (on the host) is an error, so the
// image holds only what the downloaded packages contain.
func sharedLibraries(root, exe string) ([]File, error) {
	hostExe := filepath.Join(root, exe)
	interp, err := interpreter(hostExe)
	if err != nil {
		return nil, err
	}
	if interp == "" {
		return nil, nil
	}
	loader, err := resolveIn(root, interp)
	if err != nil {
		return nil, fmt.Errorf("the loader of %s is not in the unpacked packages: %w", exe, err)
	}
	libDirs, err := libraryDirs(root)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(loader, "--library-path", strings.Join(libDirs, ":"), "--list", hostExe)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the libraries of %s: %w: %s%s", exe, err, out, stderr.Bytes())
	}
	libs, err := parseLoaderList(out)
	if err != nil {
		return nil, fmt.Errorf("listing the libraries of %s: %w", exe, err)
	}
	files, err := packagedChain(root, interp)
	if err != nil {
		return nil, err
	}
	for _, hostPath := range libs {
		rel, err := filepath.Rel(root, hostPath)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("%s needs %s, which none of the unpacked packages provides", exe, hostPath)
		}
		chain, err := packagedChain(root, "/"+filepath.ToSlash(rel))
		if err != nil {
			return nil, err
		}
		files = append(files, chain...)
	}
	return files, nil
}

// packagedChain returns the image entries for p of the unpacked package
// tree root as the packages have them: every symlink on the way from p (a
// symlink again) and the regular file it ends at, with its permissions.
func packagedChain(root, p string) ([]File, error) {
	var files []File
	for hops := 0; hops <= 40; hops++ {
		dir, err := resolveIn(root, path.Dir(p))
		if err != nil {
			return nil, err
		}
		host := filepath.Join(dir, path.Base(p))
		fi, err := os.Lstat(host)
		if err != nil {
			return nil, fmt.Errorf("%s is not in the unpacked packages: %w", p, err)
		}
		switch fi.Mode().Type() {
		case 0:
			return append(files, FromHost(p, host, fi.Mode().Perm())), nil
		case fs.ModeSymlink:
			target, err := os.Readlink(host)
			if err != nil {
				return nil, err
			}
			files = append(files, Symlink(p, target))
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			p = path.Clean(target)
		default:
			return nil, fmt.Errorf("%s in the unpacked packages is a %s", p, fi.Mode().Type())
		}
	}
	return nil, fmt.Errorf("%s: too many symlinks", p)
}

// parseLoaderList reads the loader's --list output: "name => path (addr)"
// for each library, "name => not found" for a missing one, and lines
// without "=>" for the vDSO and the loader itself.
func parseLoaderList(out []byte) ([]string, error) {
	var libs, missing []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		_, target, ok := strings.Cut(strings.TrimSpace(sc.Text()), " => ")
		if !ok {
			continue
		}
		if strings.HasPrefix(target, "not found") {
			missing = append(missing, strings.Fields(sc.Text())[0])
			continue
		}
		if i := strings.LastIndex(target, " ("); i >= 0 {
			target = target[:i]
		}
		libs = append(libs, filepath.Clean(target))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("libraries not found: %s", strings.Join(missing, " "))
	}
	if len(libs) == 0 {
		return nil, errors.New("the loader listed no library")
	}
	return libs, sc.Err()
}

// libraryDirs returns the directories of root that hold shared objects
// (name.so or name.so.N), as host paths, sorted.
func libraryDirs(root string) ([]string, error) {
	dirs := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(d.Name(), ".so") || strings.Contains(d.Name(), ".so.")) {
			dirs[filepath.Dir(p)] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(dirs))
	for d := range dirs {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}
