package etcd

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is an etcd release, MAJOR.MINOR.PATCH.
type Version struct {
	Major, Minor, Patch int
}

// ParseVersion reads "3.6.16" (a leading "v" is accepted).
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return Version{}, fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", s)
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, nil
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// CheckUpgrade says whether members running the versions in running may be
// moved to target: etcd supports patch upgrades and upgrades to the next
// minor version, with the cluster's members at most one minor version apart
// while the upgrade runs. It returns nil when every member may restart with
// target, or an error that says why not.
func CheckUpgrade(running []string, target string) error {
	t, err := ParseVersion(target)
	if err != nil {
		return err
	}
	for _, r := range running {
		if r == "" {
			continue
		}
		v, err := ParseVersion(r)
		if err != nil {
			return err
		}
		switch {
		case t.Less(v):
			return fmt.Errorf("a member runs %s: etcd cannot be downgraded to %s", v, t)
		case t.Major != v.Major || t.Minor > v.Minor+1:
			return fmt.Errorf("a member runs %s: %s skips a minor version; etcd upgrades one minor version at a time", v, t)
		}
	}
	return nil
}

// OldestVersion returns the oldest of versions, as written there, skipping
// the empty and malformed ones (a member that has not answered yet); ""
// when none is a version. Of equal versions the first is returned.
func OldestVersion(versions []string) string {
	return extremeVersion(versions, func(v, best Version) bool { return v.Less(best) })
}

// NewestVersion returns the newest of versions, as written there, skipping
// the empty and malformed ones; "" when none is a version. Of equal
// versions the first is returned.
func NewestVersion(versions []string) string {
	return extremeVersion(versions, func(v, best Version) bool { return best.Less(v) })
}

// extremeVersion returns the version of versions that beats every other
// one (the first of equal ones), skipping those ParseVersion rejects.
func extremeVersion(versions []string, beats func(v, best Version) bool) string {
	best := ""
	var bv Version
	for _, s := range versions {
		v, err := ParseVersion(s)
		if err != nil {
			continue
		}
		if best == "" || beats(v, bv) {
			best, bv = s, v
		}
	}
	return best
}
