package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// ExtractRootfs writes the flattened file system of img into dir, the way
// a container runtime unpacks it: modes kept and, when running as root,
// owners too (so that a process chrooted into dir as the image's user can
// write where the image lets it). dir itself gets mode 0755.
func ExtractRootfs(img v1.Image, dir string) (err error) {
	// The image's / must be searchable by the image's non-root user.
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil { //nolint:gosec // G302: a root directory is 0755, as in every image
		return err
	}
	rc := mutate.Extract(img)
	defer func() {
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
	}()
	// Modes of directories are set at the end: a read-only directory must
	// still receive its content.
	dirModes := map[string]os.FileMode{}
	var dirs []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the image's file system: %w", err)
		}
		target, err := extractEntry(dir, hdr, tr)
		if err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeDir && target != "" {
			dirs = append(dirs, target)
			dirModes[target] = hdr.FileInfo().Mode()
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], permBits(dirModes[dirs[i]])); err != nil {
			return err
		}
	}
	return nil
}

// extractEntry writes one entry of the image's file system under dir and
// returns its host path ("" for the root entry).
func extractEntry(dir string, hdr *tar.Header, r io.Reader) (string, error) {
	name := path.Clean("/" + hdr.Name)
	if name == "/" {
		return "", nil
	}
	target := filepath.Join(dir, filepath.FromSlash(name))
	mode := hdr.FileInfo().Mode()
	var err error
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = os.MkdirAll(target, 0o750)
	case tar.TypeReg:
		err = writeFile(target, r, mode)
	case tar.TypeSymlink:
		err = os.Symlink(hdr.Linkname, target)
	case tar.TypeLink:
		err = os.Link(filepath.Join(dir, filepath.FromSlash(path.Clean("/"+hdr.Linkname))), target)
	default:
		err = fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	if err != nil {
		return "", fmt.Errorf("unpacking %s: %w", name, err)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
			return "", err
		}
	}
	// After chown, which clears setuid and setgid, and past the umask.
	if hdr.Typeflag == tar.TypeReg {
		if err := os.Chmod(target, permBits(mode)); err != nil {
			return "", err
		}
	}
	return target, nil
}

func writeFile(target string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", target, err)
	}
	return f.Close()
}

func permBits(m os.FileMode) os.FileMode {
	return m & (os.ModePerm | os.ModeSticky | os.ModeSetgid | os.ModeSetuid)
}
