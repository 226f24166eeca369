package redis

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// NumSlots is the number of hash slots of a Redis cluster: keys hash to
// slots 0 to NumSlots-1.
const NumSlots = 16384

// SlotRange is the slots Start to End, both included.
type SlotRange struct {
	Start, End int
}

// Count is the number of slots in r.
func (r SlotRange) Count() int { return r.End - r.Start + 1 }

// Contains reports whether slot is in r.
func (r SlotRange) Contains(slot int) bool { return slot >= r.Start && slot <= r.End }

// String is "Start-End", or "Start" for a single slot, as CLUSTER NODES
// writes them.
func (r SlotRange) String() string {
	if r.Start == r.End {
		return strconv.Itoa(r.Start)
	}
	return strconv.Itoa(r.Start) + "-" + strconv.Itoa(r.End)
}

// ParseSlotRange reads "Start-End" or "Start".
func ParseSlotRange(s string) (SlotRange, error) {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	start, err1 := strconv.Atoi(lo)
	end, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || start < 0 || end < start || end >= NumSlots {
		return SlotRange{}, fmt.Errorf("invalid slot range %q", s)
	}
	return SlotRange{Start: start, End: end}, nil
}

// EvenSlots splits the slots 0..16383 into shards contiguous ranges, the
// first for shard 0, exactly as redis-cli --cluster create assigns them
// to its masters: every range holds 16384/shards slots rounded to the
// nearest integer of a running float32 sum (3 shards: 0-5460, 5461-10922,
// 10923-16383). It returns nil unless 1 <= shards <= NumSlots.
func EvenSlots(shards int) []SlotRange {
	if shards < 1 || shards > NumSlots {
		return nil
	}
	// redis-cli computes in C float: the same rounding needs float32.
	per := float32(NumSlots) / float32(shards)
	var cursor float32
	out := make([]SlotRange, 0, shards)
	first := 0
	for i := range shards {
		last := int(math.Round(float64(cursor + per - 1)))
		if last > NumSlots || i == shards-1 {
			last = NumSlots - 1
		}
		last = max(last, first)
		out = append(out, SlotRange{Start: first, End: last})
		first = last + 1
		cursor += per
	}
	return out
}

// CountSlots is the number of slots in ranges (which must not overlap).
func CountSlots(ranges []SlotRange) int {
	n := 0
	for _, r := range ranges {
		n += r.Count()
	}
	return n
}

// Normalize sorts ranges and merges the ones that overlap or touch, so
// that equal sets of slots have equal range lists.
func Normalize(ranges []SlotRange) []SlotRange {
	if len(ranges) == 0 {
		return nil
	}
	rs := slices.Clone(ranges)
	slices.SortFunc(rs, func(a, b SlotRange) int { return a.Start - b.Start })
	out := []SlotRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.Start <= last.End+1 {
			last.End = max(last.End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// RangesOf returns the slots for which has is true as normalized ranges.
func RangesOf(has func(slot int) bool) []SlotRange {
	var out []SlotRange
	for s := 0; s < NumSlots; s++ {
		if !has(s) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End == s-1 {
			out[n-1].End = s
		} else {
			out = append(out, SlotRange{Start: s, End: s})
		}
	}
	return out
}

// Missing returns the slots of 0..16383 that are in none of ranges.
func Missing(ranges []SlotRange) []SlotRange {
	var out []SlotRange
	next := 0
	for _, r := range Normalize(ranges) {
		if r.Start > next {
			out = append(out, SlotRange{Start: next, End: r.Start - 1})
		}
		next = max(next, r.End+1)
	}
	if next < NumSlots {
		out = append(out, SlotRange{Start: next, End: NumSlots - 1})
	}
	return out
}

// FormatSlots writes ranges as CLUSTER NODES does, separated by spaces.
func FormatSlots(ranges []SlotRange) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = r.String()
	}
	return strings.Join(parts, " ")
}
