package images

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// InputsLabel is the image config label holding the hash of everything
// an image was made from; Build compares it to skip unchanged images.
const InputsLabel = "io.opsmith.images.inputs"

// formatVersion is part of the inputs hash: change it when the way
// archives are written changes, so that every image is rebuilt.
const formatVersion = "opsmith-images/1"

// DefaultPath is the PATH of every image.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config is what a container of the image runs, as in the OCI image
// config.
type Config struct {
	Entrypoint []string
	Cmd        []string
	// Env is added to DefaultPath (an entry PATH=... replaces it).
	Env []string
	// User is numeric, uid:gid.
	User         string
	WorkingDir   string
	ExposedPorts []string // for example "8080/tcp"
	StopSignal   string
}

// Spec describes one image.
type Spec struct {
	// Name is the archive's base name (<Name>.tar) and the image's name in
	// the index.
	Name string
	// Ref is the reference the archive tags the image with.
	Ref    string
	Config Config
	// Files is the content of the single layer. Parent directories that
	// are not listed are added, root-owned with mode 0755.
	Files []File
	// Check, if set, runs before the archive is written (not when it is
	// up to date), for checks of the inputs too slow to run every time.
	Check func() error
}

// Result is one built (or up to date) archive.
type Result struct {
	Name string `json:"name"`
	Ref  string `json:"ref"`
	// Archive is the docker-archive, relative to the index's directory in
	// images.json and absolute once read with ReadIndex.
	Archive string `json:"archive"`
	// Digest is the image manifest's digest, ID the config's digest (the
	// image ID that the CRI and crictl report).
	Digest string `json:"digest"`
	ID     string `json:"id"`
	// Built is false when the archive was already up to date.
	Built bool `json:"-"`
}

// Build writes the docker-archive outDir/<spec.Name>.tar of the image, or
// leaves it alone when it already holds an image made from the same
// inputs.
func Build(spec Spec, outDir string) (Result, error) {
	res := Result{Name: spec.Name, Ref: spec.Ref, Archive: filepath.Join(outDir, spec.Name+".tar")}
	res, err := build(spec, outDir, res)
	if err != nil {
		return res, fmt.Errorf("image %s: %w", spec.Name, err)
	}
	return res, nil
}

func build(spec Spec, outDir string, res Result) (Result, error) {
	tag, err := name.NewTag(spec.Ref, name.StrictValidation)
	if err != nil {
		return res, fmt.Errorf("reference %q: %w", spec.Ref, err)
	}
	files, err := normalize(spec.Files)
	if err != nil {
		return res, err
	}
	layerTar, diffID, err := buildLayer(files)
	if err != nil {
		return res, err
	}
	cfg, err := configFile(spec.Config, diffID)
	if err != nil {
		return res, err
	}
	if img, err := tarball.ImageFromPath(res.Archive, &tag); err == nil {
		if old, err := img.ConfigFile(); err == nil && old.Config.Labels[InputsLabel] == cfg.Config.Labels[InputsLabel] {
			return withDigests(res, img)
		}
	}
	if spec.Check != nil {
		if err := spec.Check(); err != nil {
			return res, err
		}
	}
	img, err := image(layerTar, cfg, "opsmith-images "+spec.Name)
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(outDir, 0o750); err != nil {
		return res, err
	}
	if err := writeArchive(res.Archive, tag, img); err != nil {
		return res, err
	}
	res.Built = true
	return withDigests(res, img)
}

// writeArchive writes the docker-archive to a temporary file next to path
// and renames it, so that path is always a whole archive.
func writeArchive(path string, tag name.Tag, img v1.Image) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if err := tarball.Write(tag, img, f); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { //nolint:gosec // G302: archives are read by containerd and other users
		return err
	}
	return os.Rename(f.Name(), path)
}

// image is the one-layer image of the layer tar with the config; the layer
// is gzip-compressed once, at the fastest level.
func image(layerTar []byte, cfg *v1.ConfigFile, createdBy string) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: createdBy},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	return img, nil
}

func withDigests(res Result, img v1.Image) (Result, error) {
	d, err := img.Digest()
	if err != nil {
		return res, fmt.Errorf("manifest digest: %w", err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return res, fmt.Errorf("config digest: %w", err)
	}
	res.Digest, res.ID = d.String(), id.String()
	return res, nil
}

// configFile returns the image config for one layer with the given diff
// ID, labelled with the hash of the config and the diff ID (the layer's
// content hash, which covers every file's content, mode and owner).
func configFile(c Config, diffID string) (*v1.ConfigFile, error) {
	env := []string{DefaultPath}
	for _, e := range c.Env {
		if strings.HasPrefix(e, "PATH=") {
			env[0] = e
			continue
		}
		env = append(env, e)
	}
	var ports map[string]struct{}
	if len(c.ExposedPorts) > 0 {
		ports = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			ports[p] = struct{}{}
		}
	}
	cf := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			Entrypoint:   slices.Clone(c.Entrypoint),
			Cmd:          slices.Clone(c.Cmd),
			Env:          env,
			User:         c.User,
			WorkingDir:   c.WorkingDir,
			ExposedPorts: ports,
			StopSignal:   c.StopSignal,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	if len(cf.Config.Entrypoint) == 0 && len(cf.Config.Cmd) == 0 {
		return nil, errors.New("config has neither entrypoint nor command")
	}
	raw, err := json.Marshal(cf)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", formatVersion, raw, diffID)
	cf.Config.Labels = map[string]string{InputsLabel: "sha256:" + hex.EncodeToString(h.Sum(nil))}
	return cf, nil
}
