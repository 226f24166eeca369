package redis

import (
	"slices"
	"testing"
)

// TestEvenSlots compares EvenSlots with what redis-cli --cluster create
// of Debian's redis-tools 7.0.15 printed for the same number of masters
// ("Master[i] -> Slots a - b").
func TestEvenSlots(t *testing.T) {
	tests := []struct {
		shards int
		ends   []int // the last slot of every range
	}{
		{1, []int{16383}},
		{3, []int{5460, 10922, 16383}},
		{4, []int{4095, 8191, 12287, 16383}},
		{5, []int{3276, 6553, 9829, 13106, 16383}},
		{6, []int{2730, 5460, 8191, 10922, 13652, 16383}},
		{7, []int{2340, 4680, 7021, 9361, 11702, 14042, 16383}},
		{10, []int{1637, 3276, 4914, 6553, 8191, 9829, 11468, 13106, 14745, 16383}},
	}
	for _, tt := range tests {
		got := EvenSlots(tt.shards)
		var ends []int
		for i, r := range got {
			ends = append(ends, r.End)
			if i > 0 && r.Start != got[i-1].End+1 {
				t.Errorf("EvenSlots(%d): range %d starts at %d, want %d", tt.shards, i, r.Start, got[i-1].End+1)
			}
		}
		if !slices.Equal(ends, tt.ends) || got[0].Start != 0 || CountSlots(got) != NumSlots {
			t.Errorf("EvenSlots(%d) = %v, want ranges ending at %v", tt.shards, got, tt.ends)
		}
	}
	for _, n := range []int{2, 9, 100, 1000, 16383, NumSlots} {
		got := EvenSlots(n)
		lo, hi := NumSlots, 0
		for _, r := range got {
			lo, hi = min(lo, r.Count()), max(hi, r.Count())
		}
		if len(got) != n || CountSlots(got) != NumSlots || hi-lo > 1 || len(Missing(got)) != 0 {
			t.Errorf("EvenSlots(%d): %d ranges of %d..%d slots, %d slots", n, len(got), lo, hi, CountSlots(got))
		}
	}
	for _, n := range []int{0, -1, NumSlots + 1} {
		if got := EvenSlots(n); got != nil {
			t.Errorf("EvenSlots(%d) = %v, want nil", n, got)
		}
	}
}

func TestSlotRanges(t *testing.T) {
	r := func(a, b int) SlotRange { return SlotRange{Start: a, End: b} }
	if got := Normalize([]SlotRange{r(10, 20), r(0, 5), r(6, 9), r(15, 30), r(40, 40)}); !slices.Equal(got, []SlotRange{r(0, 30), r(40, 40)}) {
		t.Errorf("Normalize = %v", got)
	}
	if got := Missing([]SlotRange{r(1, 5460), r(5462, 16382)}); !slices.Equal(got, []SlotRange{r(0, 0), r(5461, 5461), r(16383, 16383)}) {
		t.Errorf("Missing = %v", got)
	}
	if got := Missing(nil); !slices.Equal(got, []SlotRange{r(0, 16383)}) {
		t.Errorf("Missing(nil) = %v", got)
	}
	if got := CountSlots([]SlotRange{r(0, 5460), r(5461, 5461)}); got != 5462 {
		t.Errorf("CountSlots = %d", got)
	}
	if got := RangesOf(func(s int) bool { return s%8192 < 2 }); !slices.Equal(got, []SlotRange{r(0, 1), r(8192, 8193)}) {
		t.Errorf("RangesOf = %v", got)
	}
	if got := FormatSlots([]SlotRange{r(0, 5460), r(5461, 5461)}); got != "0-5460 5461" {
		t.Errorf("FormatSlots = %q", got)
	}
	for in, want := range map[string]SlotRange{"0-5460": r(0, 5460), "16383": r(16383, 16383)} {
		if got, err := ParseSlotRange(in); err != nil || got != want {
			t.Errorf("ParseSlotRange(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-1", "5-3", "0-16384", "a-b", "1-"} {
		if got, err := ParseSlotRange(in); err == nil {
			t.Errorf("ParseSlotRange(%q) = %v, want an error", in, got)
		}
	}
}
