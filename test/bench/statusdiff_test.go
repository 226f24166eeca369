package bench

import (
	"encoding/json"
	"testing"
)

func TestStatusChanges(t *testing.T) {
	parse := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := map[string]map[string]any{
		"AppService/a": parse(`{"replicas":1,"conditions":[{"type":"Available","status":"True","message":"1 of 1"}]}`),
		"AppService/b": parse(`{"replicas":1}`),
		"AppService/c": parse(`{"replicas":1}`),
	}
	after := map[string]map[string]any{
		"AppService/a": parse(`{"replicas":2,"conditions":[{"type":"Available","status":"True","message":"2 of 2"}]}`),
		"AppService/b": parse(`{"replicas":1}`),
		"AppService/c": parse(`{"replicas":1,"readyReplicas":1}`),
	}
	fields, changed, example := statusChanges(before, after)
	if changed != 2 {
		t.Errorf("changed = %d, want 2", changed)
	}
	want := Requests{"AppService replicas": 1, "AppService conditions[Available].message": 1, "AppService readyReplicas": 1}
	if len(fields) != len(want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("fields[%q] = %d, want %d (all: %v)", k, fields[k], v, fields)
		}
	}
	if example == "" {
		t.Error("no example")
	}
	if _, n, _ := statusChanges(before, before); n != 0 {
		t.Errorf("identical statuses: %d changed", n)
	}
}

func TestMedian(t *testing.T) {
	if m := median([]int64{5, 1, 9, 3, 7}); m != 5 {
		t.Errorf("median = %d, want 5", m)
	}
}
