package images

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// IndexFile is the name of the index Build's callers write next to the
// archives: a JSON array of Results, archives relative to its directory.
const IndexFile = "images.json"

// WriteIndex writes dir/images.json listing the results, sorted by name.
func WriteIndex(dir string, results []Result) error {
	entries := make([]Result, 0, len(results))
	for _, r := range results {
		rel, err := filepath.Rel(dir, r.Archive)
		if err != nil {
			return fmt.Errorf("archive %s is not under %s: %w", r.Archive, dir, err)
		}
		r.Archive = filepath.ToSlash(rel)
		entries = append(entries, r)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	b, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, IndexFile+".*.tmp")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { //nolint:gosec // G302: the index is read by other users' tools
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, IndexFile))
}

// ReadIndex reads dir/images.json, with absolute archive paths.
func ReadIndex(dir string) ([]Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, err
	}
	var entries []Result
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, IndexFile), err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		entries[i].Archive = filepath.Join(abs, filepath.FromSlash(entries[i].Archive))
	}
	return entries, nil
}

// Lookup returns the entry of the index with the given reference.
func Lookup(entries []Result, ref string) (Result, bool) {
	for _, e := range entries {
		if e.Ref == ref {
			return e, true
		}
	}
	return Result{}, false
}
