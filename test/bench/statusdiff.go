package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
)

// statuses reads the status of every AppService and MicroServiceDeploy of
// the operator's namespace, by "kind/name", in JSON form.
func (r *run) statuses(ctx context.Context) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	add := func(kind, name string, status any) error {
		data, err := json.Marshal(status)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
		out[kind+"/"+name] = m
		return nil
	}
	as := &appsv1alpha1.AppServiceList{}
	if err := r.k8s.List(ctx, as, client.InNamespace(operatorNS)); err != nil {
		return nil, err
	}
	for _, a := range as.Items {
		if err := add("AppService", a.Name, a.Status); err != nil {
			return nil, err
		}
	}
	ms := &appsv1alpha1.MicroServiceDeployList{}
	if err := r.k8s.List(ctx, ms, client.InNamespace(operatorNS)); err != nil {
		return nil, err
	}
	for _, m := range ms.Items {
		if err := add("MicroServiceDeploy", m.Name, m.Status); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// statusChanges compares two reads of statuses and counts, per field
// ("Kind replicas", "Kind conditions[Available].message"), the objects in
// which it changed; example is one changed object with its old and new
// status.
func statusChanges(before, after map[string]map[string]any) (fields Requests, changed int, example string) {
	fields = Requests{}
	keys := make([]string, 0, len(after))
	for k := range after {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		old, now := before[k], after[k]
		if reflect.DeepEqual(old, now) {
			continue
		}
		changed++
		kind := k[:len(k)-len(k[indexSlash(k):])]
		for _, f := range diffFields(old, now) {
			fields[kind+" "+f]++
		}
		if example == "" {
			o, _ := json.Marshal(old)
			n, _ := json.Marshal(now)
			example = fmt.Sprintf("%s: before %s after %s", k, o, n)
		}
	}
	return fields, changed, example
}

func indexSlash(s string) int {
	for i := range s {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}

// diffFields lists the fields of two statuses that differ; conditions by
// type and field.
func diffFields(old, now map[string]any) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range []map[string]any{old, now} {
		for k := range m {
			if seen[k] {
				continue
			}
			seen[k] = true
			if k == "conditions" {
				out = append(out, diffConditions(old[k], now[k])...)
			} else if !reflect.DeepEqual(old[k], now[k]) {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

func diffConditions(old, now any) []string {
	byType := func(v any) map[string]map[string]any {
		out := map[string]map[string]any{}
		l, _ := v.([]any)
		for _, c := range l {
			if m, ok := c.(map[string]any); ok {
				t, _ := m["type"].(string)
				out[t] = m
			}
		}
		return out
	}
	o, n := byType(old), byType(now)
	var out []string
	for t := range mergeKeys(o, n) {
		for f := range mergeKeys(o[t], n[t]) {
			if !reflect.DeepEqual(o[t][f], n[t][f]) {
				out = append(out, fmt.Sprintf("conditions[%s].%s", t, f))
			}
		}
	}
	return out
}

func mergeKeys[V any](a, b map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
