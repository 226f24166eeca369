package microservicedeploy

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

func instances(n int) []*appsv1alpha1.MicroServiceDeploy {
	var out []*appsv1alpha1.MicroServiceDeploy
	for i := range n {
		m := msd(1, false, false, nil)
		m.Namespace, m.Name, m.UID, m.Generation = "ns", fmt.Sprintf("ms-%d", i), types.UID(fmt.Sprintf("uid-%d", i)), 1
		out = append(out, m)
	}
	return out
}

// liveQuota is the quota as the API server stores it after an apply for
// instances.
func liveQuota(t *testing.T, instances []*appsv1alpha1.MicroServiceDeploy) *corev1.ResourceQuota {
	t.Helper()
	data, err := json.Marshal(ResourceQuota("ns", instances))
	if err != nil {
		t.Fatal(err)
	}
	q := &corev1.ResourceQuota{}
	if err := json.Unmarshal(data, q); err != nil {
		t.Fatal(err)
	}
	q.UID, q.ResourceVersion = "quota-uid", "7"
	return q
}

func names(l []*appsv1alpha1.MicroServiceDeploy) []string {
	var out []string
	for _, m := range l {
		out = append(out, m.Name)
	}
	return out
}

func TestQuotaToCheck(t *testing.T) {
	all := instances(4)
	q := liveQuota(t, all[:2]) // written when only the first two existed
	if got := quotaToCheck(q, all[0], all); len(got) != 2 || got[0] != all[0] || got[1] != all[1] {
		t.Errorf("covered instance during a burst: check %v, want the two the quota names", names(got))
	}
	if got := quotaToCheck(q, all[3], all); got != nil {
		t.Errorf("instance the quota does not name: check %v, want a write", names(got))
	}
	full := liveQuota(t, all)
	if got := quotaToCheck(full, all[3], all); len(got) != 4 {
		t.Errorf("quota naming every instance: check %v, want all", names(got))
	}
	// An instance the quota names was deleted: the quota names more than
	// the live instances, and must be checked (and found wrong) for them.
	if got := quotaToCheck(full, all[0], all[:3]); len(got) != 3 {
		t.Errorf("after a deletion: check %v, want the three live ones", names(got))
	}
}

func TestQuotaCurrent(t *testing.T) {
	r := &Reconciler{}
	all := instances(3)
	q := liveQuota(t, all)
	if ok, err := r.quotaCurrent(q, all); err != nil || ok {
		t.Fatalf("quota without the applied hash is current: %v %v", ok, err)
	}
	// As Apply writes it: with the hash of the desired state.
	u, err := apply.AsApplied(ResourceQuota("ns", all))
	if err != nil {
		t.Fatal(err)
	}
	q.Annotations = u.GetAnnotations()
	if ok, err := r.quotaCurrent(q, all); err != nil || !ok {
		t.Fatalf("applied quota not current: %v %v", ok, err)
	}
	if ok, _ := r.quotaCurrent(q, all[:2]); ok {
		t.Error("quota of three instances is current for two")
	}
	bigger := instances(3)
	bigger[1].Spec.Replicas, bigger[1].Generation = 5, 2
	if ok, _ := r.quotaCurrent(q, bigger); ok {
		t.Error("quota is current after an instance's spec changed")
	}
	// The remembered answer is for this resourceVersion only: a quota
	// edited by hand is compared again.
	edited := q.DeepCopy()
	edited.ResourceVersion = "8"
	edited.Spec.Hard = corev1.ResourceList{}
	if ok, _ := r.quotaCurrent(edited, all); ok {
		t.Error("a quota edited by hand is current")
	}
}

func TestQuotaChangedIgnoresUsage(t *testing.T) {
	p := quotaChanged()
	q := liveQuota(t, instances(2))
	used := q.DeepCopy()
	used.ResourceVersion = "8"
	used.Status.Used = corev1.ResourceList{corev1.ResourcePods: q.Spec.Hard[corev1.ResourcePods]}
	if p.Update(event.UpdateEvent{ObjectOld: q, ObjectNew: used}) {
		t.Error("a usage update passes")
	}
	edited := used.DeepCopy()
	edited.Spec.Hard = corev1.ResourceList{}
	if !p.Update(event.UpdateEvent{ObjectOld: used, ObjectNew: edited}) {
		t.Error("a spec edit does not pass")
	}
	fewer := used.DeepCopy()
	fewer.OwnerReferences = fewer.OwnerReferences[1:]
	if !p.Update(event.UpdateEvent{ObjectOld: used, ObjectNew: fewer}) {
		t.Error("an owner removed by the garbage collector does not pass")
	}
}

func TestQuotaOwnerWakesOneLiveInstance(t *testing.T) {
	all := instances(3)
	q := liveQuota(t, all)
	q.Name = QuotaName
	deleting := all[0].DeepCopy()
	deleting.DeletionTimestamp, deleting.Finalizers = ptr.To(metav1.Now()), []string{"test"}
	sch := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	if err := appsv1alpha1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(sch).WithObjects(deleting, all[1], all[2]).Build()
	r := &Reconciler{Client: c}
	got := r.quotaOwner(context.Background(), q)
	if len(got) != 1 || got[0].Name != all[1].Name || got[0].Namespace != "ns" {
		t.Errorf("requests %v, want only %s (the first live owner)", got, all[1].Name)
	}
	orphan := q.DeepCopy()
	orphan.OwnerReferences = nil
	if got := r.quotaOwner(context.Background(), orphan); len(got) != 1 || got[0].Name != all[1].Name {
		t.Errorf("quota naming no owner: requests %v, want %s", got, all[1].Name)
	}
	other := q.DeepCopy()
	other.Name = "someone-elses"
	if got := r.quotaOwner(context.Background(), other); len(got) != 0 {
		t.Errorf("another quota wakes %v", got)
	}
}

// TestQuotaStaysSmall: however many instances a namespace has, the quota
// has a few owners and a short key per instance, not an owner reference
// per instance.
func TestQuotaStaysSmall(t *testing.T) {
	all := instances(1000)
	for i, m := range all {
		m.UID = types.UID(fmt.Sprintf("6b1f0c3e-%04x-4c1e-9a51-%012x", i, i*7919))
	}
	q := liveQuota(t, all)
	if len(q.OwnerReferences) != quotaOwners {
		t.Errorf("%d owners, want %d", len(q.OwnerReferences), quotaOwners)
	}
	covered := quotaCovers(q)
	if len(covered) != len(all) {
		t.Fatalf("covers %d keys for %d instances", len(covered), len(all))
	}
	for _, m := range all {
		if !covered[QuotaKey(m)] {
			t.Fatalf("%s not covered", m.Name)
		}
	}
	data, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 20_000 {
		t.Errorf("quota for 1000 instances is %d bytes", len(data))
	}
	// The owners are the first instances by name, whatever their order.
	reversed := make([]*appsv1alpha1.MicroServiceDeploy, len(all))
	for i, m := range all {
		reversed[len(all)-1-i] = m
	}
	if r := liveQuota(t, reversed); r.OwnerReferences[0].Name != all[0].Name || r.Annotations[QuotaCoversAnnotation] != q.Annotations[QuotaCoversAnnotation] {
		t.Errorf("quota depends on the order of instances: owners %v", r.OwnerReferences)
	}
}

// TestQuotaRightForAllIsRemembered: a quota found right for every instance
// is not checked again (no list of the namespace) until the quota or an
// instance of its namespace changes.
func TestQuotaRightForAllIsRemembered(t *testing.T) {
	r := &Reconciler{}
	q := liveQuota(t, instances(2))
	rev := r.revisions.get("ns")
	if r.quotaChecks.coversAll(q, rev) {
		t.Fatal("covers all before any check")
	}
	r.quotaChecks.rememberAll(q, rev)
	if !r.quotaChecks.coversAll(q, rev) {
		t.Fatal("not remembered")
	}
	h := r.revisionCounter()
	m := instances(3)[2]
	old := m.DeepCopy()
	m.Status.Phase = appsv1alpha1.PhaseRunning
	h.Update(context.Background(), event.UpdateEvent{ObjectOld: old, ObjectNew: m}, nil)
	if !r.quotaChecks.coversAll(q, r.revisions.get("ns")) {
		t.Error("a status change made the quota unchecked")
	}
	spec := m.DeepCopy()
	spec.Generation++
	h.Update(context.Background(), event.UpdateEvent{ObjectOld: m, ObjectNew: spec}, nil)
	if r.quotaChecks.coversAll(q, r.revisions.get("ns")) {
		t.Error("still covered after an instance's spec changed")
	}
	r.quotaChecks.rememberAll(q, r.revisions.get("ns"))
	h.Create(context.Background(), event.CreateEvent{Object: instances(4)[3]}, nil)
	if r.quotaChecks.coversAll(q, r.revisions.get("ns")) {
		t.Error("still covered after an instance was created")
	}
	r.quotaChecks.rememberAll(q, r.revisions.get("ns"))
	edited := q.DeepCopy()
	edited.ResourceVersion = "8"
	if r.quotaChecks.coversAll(edited, r.revisions.get("ns")) {
		t.Error("a new resourceVersion of the quota is covered")
	}
	other := instances(1)[0]
	other.Namespace = "other"
	h.Delete(context.Background(), event.DeleteEvent{Object: other}, nil)
	if !r.quotaChecks.coversAll(q, r.revisions.get("ns")) {
		t.Error("a deletion in another namespace made the quota unchecked")
	}
}
