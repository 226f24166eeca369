package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// epoch is the modification time of every entry, so that the same inputs
// always give the same layer digest.
var epoch = time.Unix(0, 0).UTC()

// File is one entry of an image's file system.
type File struct {
	// Path is the absolute path in the image, for example /usr/bin/redis-cli.
	Path string
	// Mode holds the permission bits and the type: a regular file when no
	// type bit is set, fs.ModeDir or fs.ModeSymlink. Setuid, setgid and
	// sticky bits are kept.
	Mode fs.FileMode
	// UID and GID own the entry.
	UID, GID int
	// Source is the host file whose content a regular file gets; Data is
	// used when Source is empty.
	Source string
	Data   []byte
	// Link is a symlink's target.
	Link string
}

// Dir is a directory entry owned by uid.
func Dir(p string, perm fs.FileMode, uid int) File {
	return File{Path: p, Mode: fs.ModeDir | perm, UID: uid, GID: uid}
}

// Symlink is a symbolic link at p pointing to target.
func Symlink(p, target string) File {
	return File{Path: p, Mode: fs.ModeSymlink | 0o777, Link: target}
}

// FromHost is a root-owned regular file with the content of the host file
// src.
func FromHost(p, src string, perm fs.FileMode) File {
	return File{Path: p, Mode: perm, Source: src}
}

// Text is a root-owned regular file with the given content.
func Text(p, content string, perm fs.FileMode) File {
	return File{Path: p, Mode: perm, Data: []byte(content)}
}

func (f File) validate() error {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
		return fmt.Errorf("image path %q must be absolute, clean and not /", f.Path)
	}
	switch f.Mode.Type() {
	case 0:
		if f.Link != "" {
			return fmt.Errorf("%s: a regular file has no link target", f.Path)
		}
	case fs.ModeDir:
		if f.Source != "" || f.Data != nil || f.Link != "" {
			return fmt.Errorf("%s: a directory has no content", f.Path)
		}
	case fs.ModeSymlink:
		if f.Link == "" || f.Source != "" || f.Data != nil {
			return fmt.Errorf("%s: a symlink needs a target and no content", f.Path)
		}
	default:
		return fmt.Errorf("%s: unsupported file type %s", f.Path, f.Mode.Type())
	}
	return nil
}

// normalize checks the files, adds root-owned 0755 directories for parents
// that are not listed and sorts them by path, parents first. Two entries
// for one path are an error.
func normalize(files []File) ([]File, error) {
	byPath := make(map[string]File, len(files))
	for _, f := range files {
		if err := f.validate(); err != nil {
			return nil, err
		}
		if _, dup := byPath[f.Path]; dup {
			return nil, fmt.Errorf("%s is listed twice", f.Path)
		}
		byPath[f.Path] = f
	}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "/"; dir = path.Dir(dir) {
			parent, ok := byPath[dir]
			if !ok {
				byPath[dir] = Dir(dir, 0o755, 0)
				continue
			}
			if !parent.Mode.IsDir() {
				return nil, fmt.Errorf("%s is inside %s, which is not a directory", f.Path, dir)
			}
		}
	}
	out := make([]File, 0, len(byPath))
	for _, f := range byPath {
		out = append(out, f)
	}
	// Sorting by path components puts every directory before its content.
	sort.Slice(out, func(i, j int) bool { return lessPath(out[i].Path, out[j].Path) })
	return out, nil
}

// lessPath orders paths component by component, so /a/b comes before /a-b.
func lessPath(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

// content returns a regular file's bytes.
func (f File) content() ([]byte, error) {
	if f.Source == "" {
		return f.Data, nil
	}
	b, err := os.ReadFile(f.Source)
	if err != nil {
		return nil, fmt.Errorf("reading %s for %s: %w", f.Source, f.Path, err)
	}
	return b, nil
}

// writeLayer writes the uncompressed layer tar of the normalized files and
// returns its sha256 (the layer's diff ID).
func writeLayer(w io.Writer, files []File) (string, error) {
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(w, h))
	for _, f := range files {
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(f.Path, "/"),
			Mode:    tarMode(f.Mode),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		var data []byte
		switch f.Mode.Type() {
		case fs.ModeDir:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case fs.ModeSymlink:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = f.Link
		default:
			hdr.Typeflag = tar.TypeReg
			b, err := f.content()
			if err != nil {
				return "", err
			}
			data = b
			hdr.Size = int64(len(b))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", fmt.Errorf("writing tar header of %s: %w", f.Path, err)
		}
		if _, err := tw.Write(data); err != nil {
			return "", fmt.Errorf("writing %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("closing layer tar: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// tarMode is the tar header mode of m: permission bits plus setuid, setgid
// and sticky in their Unix positions.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// buildLayer returns the layer tar of files in memory and its diff ID.
func buildLayer(files []File) ([]byte, string, error) {
	var buf bytes.Buffer
	diffID, err := writeLayer(&buf, files)
	if err != nil {
		return nil, "", err
	}
	return buf.Bytes(), diffID, nil
}
