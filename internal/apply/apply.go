package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// HashAnnotation holds a hash of the desired state an object was last
// applied with.
const HashAnnotation = "opsmith.io/applied-hash"

// Result says what Apply did.
type Result string

const (
	// Unchanged means the live object already matched; nothing was written.
	Unchanged Result = "Unchanged"
	// Created means the object did not exist and was created.
	Created Result = "Created"
	// Updated means the object existed and was changed.
	Updated Result = "Updated"
)

// Applier applies desired objects with one field manager.
type Applier struct {
	Client       client.Client
	FieldManager string
}

// Apply makes the object described by desired exist with desired's content.
// live is the current object as read (typically from the cache); pass nil
// when it does not exist. desired must carry apiVersion, kind, name and (for
// namespaced kinds) namespace. Apply writes nothing when live already holds
// every field of desired and was last applied with the same desired state.
func (a *Applier) Apply(ctx context.Context, desired runtime.ApplyConfiguration, live client.Object) (Result, error) {
	return a.apply(ctx, desired, live, nil)
}

// ApplyObserved is Apply that, after a write, fills observed with the
// object as the API server answered it (with the identity, generation and
// defaults the server set), so that the caller can go on with the written
// object instead of reading it back. observed may be live.
func (a *Applier) ApplyObserved(ctx context.Context, desired runtime.ApplyConfiguration, live, observed client.Object) (Result, error) {
	return a.apply(ctx, desired, live, observed)
}

func (a *Applier) apply(ctx context.Context, desired runtime.ApplyConfiguration, live, observed client.Object) (Result, error) {
	u, err := desiredWithHash(desired)
	if err != nil {
		return "", err
	}
	exists := live != nil && live.GetUID() != ""
	if exists {
		same, err := Matches(u.Object, live)
		if err != nil {
			return "", err
		}
		if same {
			return Unchanged, nil
		}
	}
	// The client decodes the API server's answer into u.
	if err := a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(a.FieldManager), client.ForceOwnership); err != nil {
		return "", fmt.Errorf("applying %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	if observed != nil {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, observed); err != nil {
			return "", fmt.Errorf("decoding the applied %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	if exists {
		return Updated, nil
	}
	return Created, nil
}

// Current reports whether live (which must exist) already holds desired
// and was applied from the same desired state: whether Apply would write
// nothing.
func Current(desired runtime.ApplyConfiguration, live client.Object) (bool, error) {
	u, err := desiredWithHash(desired)
	if err != nil {
		return false, err
	}
	return Matches(u.Object, live)
}

// AsApplied returns desired as Apply sends it: in unstructured form,
// stamped with the hash annotation.
func AsApplied(desired runtime.ApplyConfiguration) (*unstructured.Unstructured, error) {
	return desiredWithHash(desired)
}

// desiredWithHash converts desired to unstructured form and stamps it with
// the hash of its content.
func desiredWithHash(desired runtime.ApplyConfiguration) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(desired)
	if err != nil {
		return nil, fmt.Errorf("encoding desired object: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(data, &u.Object); err != nil {
		return nil, fmt.Errorf("decoding desired object: %w", err)
	}
	sum := sha256.Sum256(data)
	annotations := u.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[HashAnnotation] = hex.EncodeToString(sum[:12])
	u.SetAnnotations(annotations)
	return u, nil
}

// Matches reports whether every field of desired (an object in unstructured
// form) holds the same value in live. apiVersion, kind and status of desired
// are not compared: typed objects read from a cache carry no type meta, and
// status is not applied.
func Matches(desired map[string]any, live client.Object) (bool, error) {
	data, err := json.Marshal(live)
	if err != nil {
		return false, fmt.Errorf("encoding live object: %w", err)
	}
	var liveMap map[string]any
	if err := json.Unmarshal(data, &liveMap); err != nil {
		return false, fmt.Errorf("decoding live object: %w", err)
	}
	for k, v := range desired {
		switch k {
		case "apiVersion", "kind", "status":
			continue
		}
		if !subset(v, liveMap[k]) {
			return false, nil
		}
	}
	return true, nil
}

func isObjectList(l []any) bool {
	for _, e := range l {
		if _, ok := e.(map[string]any); !ok {
			return false
		}
	}
	return true
}

// subset reports whether want is contained in got: maps key by key, lists
// element by element (got may have extra trailing elements added by other
// managers; lists of scalars must match exactly), scalars by equality (a
// zero value matching an absent field).
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		return subsetMap(w, got)
	case []any:
		return subsetList(w, got)
	default:
		// Typed objects omit zero values of omitempty fields (false, 0,
		// ""): a desired zero value matches an absent one.
		if got == nil {
			return want == false || want == float64(0) || want == ""
		}
		return want == got
	}
}

func subsetMap(w map[string]any, got any) bool {
	g, ok := got.(map[string]any)
	if !ok {
		return len(w) == 0 && got == nil
	}
	for k, wv := range w {
		if !subset(wv, g[k]) {
			return false
		}
	}
	return true
}

func subsetList(w []any, got any) bool {
	g, ok := got.([]any)
	if !ok {
		return len(w) == 0 && got == nil
	}
	// Lists of scalars are atomic and must match exactly; lists of objects
	// may have extra trailing entries owned by other managers.
	if len(g) < len(w) || (len(g) != len(w) && !isObjectList(w)) {
		return false
	}
	for i := range w {
		if !subset(w[i], g[i]) {
			return false
		}
	}
	return true
}
