package etcd

import "testing"

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr bool
	}{
		{in: "3.6.16", want: Version{3, 6, 16}},
		{in: "v3.5.0", want: Version{3, 5, 0}},
		{in: "", wantErr: true},
		{in: "3.6", wantErr: true},
		{in: "3.6.x", wantErr: true},
		{in: "3.-1.0", wantErr: true},
		{in: "3.6.16-rc.0", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b Version
		want bool
	}{
		{Version{3, 5, 35}, Version{3, 6, 0}, true},
		{Version{3, 6, 0}, Version{3, 5, 35}, false},
		{Version{3, 6, 9}, Version{3, 6, 16}, true}, // numeric, not lexical
		{Version{2, 9, 9}, Version{3, 0, 0}, true},
		{Version{3, 6, 16}, Version{3, 6, 16}, false},
	}
	for _, tt := range tests {
		if got := tt.a.Less(tt.b); got != tt.want {
			t.Errorf("%v.Less(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestOldestNewestVersion(t *testing.T) {
	tests := []struct {
		name           string
		versions       []string
		oldest, newest string
	}{
		{name: "none", versions: nil},
		{name: "only unknown", versions: []string{"", "latest"}},
		{name: "one", versions: []string{"3.6.16"}, oldest: "3.6.16", newest: "3.6.16"},
		{name: "mid-upgrade", versions: []string{"3.6.16", "3.5.35", "", "3.6.16"}, oldest: "3.5.35", newest: "3.6.16"},
		{name: "numeric order", versions: []string{"3.6.9", "3.6.16", "3.6.10"}, oldest: "3.6.9", newest: "3.6.16"},
		{name: "malformed skipped", versions: []string{"garbage", "3.5.0", "4", "3.4.1"}, oldest: "3.4.1", newest: "3.5.0"},
		{name: "returned as written, first of equals", versions: []string{"v3.6.16", "3.6.16", "v3.5.0", "3.5.0"},
			oldest: "v3.5.0", newest: "v3.6.16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OldestVersion(tt.versions); got != tt.oldest {
				t.Errorf("OldestVersion(%q) = %q, want %q", tt.versions, got, tt.oldest)
			}
			if got := NewestVersion(tt.versions); got != tt.newest {
				t.Errorf("NewestVersion(%q) = %q, want %q", tt.versions, got, tt.newest)
			}
		})
	}
}
