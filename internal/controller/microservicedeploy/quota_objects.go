package microservicedeploy

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	schedulingv1ac "k8s.io/client-go/applyconfigurations/scheduling/v1"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// Resource management. Kubernetes quotas are per namespace, and several
// instances share a namespace, so one ResourceQuota per namespace is kept
// at the sum of every instance's largest footprint: its most pods (replicas,
// or the autoscaler's maximum) plus the one extra pod a rolling update
// adds, times its requests and limits. An instance can then always reach
// its own maximum, and no instance can take what another needs.
//
// The quota is scoped to the PriorityClass that microservice pods carry, so
// it counts only them: other workloads in the namespace are neither counted
// nor forced to declare limits.
const (
	// QuotaName is the name of the namespace's microservice quota.
	QuotaName = "opsmith-microservices"
	// PriorityClassName is the (cluster-wide) priority class of
	// microservice pods, at the default priority 0, never preempting.
	PriorityClassName = "opsmith-microservice"
)

// PriorityClass builds the priority class microservice pods run with.
func PriorityClass() *schedulingv1ac.PriorityClassApplyConfiguration {
	return schedulingv1ac.PriorityClass(PriorityClassName).
		WithLabels(map[string]string{apply.LabelManagedBy: apply.ManagedByValue}).
		WithValue(0).
		WithGlobalDefault(false).
		WithPreemptionPolicy(corev1.PreemptNever).
		WithDescription("Pods of opsmith MicroServiceDeploys; scopes their namespace's ResourceQuota. Default priority, never preempts.")
}

// MaxPods is the most pods an instance can run at once.
func MaxPods(m *appsv1alpha1.MicroServiceDeploy) int64 {
	if m.Spec.Idle {
		return 0
	}
	n := m.Spec.Replicas
	if autoscaled(m) {
		_, n = AutoscalingBounds(m)
	}
	if n == 0 {
		return 0
	}
	return int64(n) + 1 // maxSurge
}

// QuotaHard is the quota for a namespace's instances. A compute resource
// is limited only when every active instance declares it: a quota on, say,
// limits.cpu rejects pods that do not set limits.cpu.
func QuotaHard(instances []*appsv1alpha1.MicroServiceDeploy) corev1.ResourceList {
	type amount struct {
		name corev1.ResourceName
		get  func(*appsv1alpha1.MicroServiceDeploy) *resource.Quantity
	}
	amounts := []amount{
		{corev1.ResourceRequestsCPU, func(m *appsv1alpha1.MicroServiceDeploy) *resource.Quantity {
			return m.Spec.ResourceRequirements.Requests.CPU
		}},
		{corev1.ResourceRequestsMemory, func(m *appsv1alpha1.MicroServiceDeploy) *resource.Quantity {
			return m.Spec.ResourceRequirements.Requests.Memory
		}},
		{corev1.ResourceLimitsCPU, func(m *appsv1alpha1.MicroServiceDeploy) *resource.Quantity {
			return m.Spec.ResourceRequirements.Limits.CPU
		}},
		{corev1.ResourceLimitsMemory, func(m *appsv1alpha1.MicroServiceDeploy) *resource.Quantity {
			return m.Spec.ResourceRequirements.Limits.Memory
		}},
	}
	hard := corev1.ResourceList{}
	pods := resource.NewQuantity(0, resource.DecimalSI)
	for _, m := range instances {
		pods.Add(*resource.NewQuantity(MaxPods(m), resource.DecimalSI))
	}
	hard[corev1.ResourcePods] = *pods
	for _, a := range amounts {
		total := resource.Quantity{}
		declared := true
		for _, m := range instances {
			n := MaxPods(m)
			if n == 0 {
				continue
			}
			q := a.get(m)
			if q == nil {
				declared = false
				break
			}
			total.Add(*resource.NewMilliQuantity(q.MilliValue()*n, q.Format))
		}
		if declared {
			hard[a.name] = total
		}
	}
	return hard
}

// QuotaCoversAnnotation lists, on the namespace quota, the instances its
// size covers: a short digest of each one's UID (QuotaKey), sorted and
// comma-separated.
const QuotaCoversAnnotation = "opsmith.io/quota-covers"

// quotaOwners is how many instances own the quota (the first ones by
// name). The quota is garbage collected once all of them are gone; while
// other instances remain, the next reconcile of one of them applies it
// again, owned by the instances that are left. Naming every instance as an
// owner would make the quota grow with the namespace: a status update
// (one per pod the quota admits) then rewrites and re-merges thousands of
// owner references, and at some thousands of instances the object would
// exceed the API server's size limit.
const quotaOwners = 3

// QuotaKey is the digest of an instance's UID that the quota's coverage
// annotation holds: 48 bits of its FNV-1a hash, 12 hex digits. Two
// instances of a namespace sharing a key (odds of about n²/2⁴⁹) would at
// worst make one of them skip a quota write that the next reconcile of a
// namespace whose every instance looks covered then makes, since the quota
// is then compared with the one built for all of them.
func QuotaKey(m *appsv1alpha1.MicroServiceDeploy) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(m.UID))
	return fmt.Sprintf("%012x", h.Sum64()>>16)
}

// quotaCovers reads the keys of the instances a live quota covers.
func quotaCovers(quota *corev1.ResourceQuota) map[string]bool {
	covered := map[string]bool{}
	for _, k := range strings.Split(quota.Annotations[QuotaCoversAnnotation], ",") {
		if k != "" {
			covered[k] = true
		}
	}
	return covered
}

// ResourceQuota builds the namespace's quota for instances: sized for all
// of them, naming them in its coverage annotation, and owned by the first
// few so that it goes away with the last one.
func ResourceQuota(namespace string, instances []*appsv1alpha1.MicroServiceDeploy) *corev1ac.ResourceQuotaApplyConfiguration {
	sorted := append([]*appsv1alpha1.MicroServiceDeploy(nil), instances...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	owners := make([]*metav1ac.OwnerReferenceApplyConfiguration, 0, quotaOwners)
	for _, m := range sorted[:min(len(sorted), quotaOwners)] {
		owners = append(owners, ownerReference(m, false))
	}
	keys := make([]string, len(sorted))
	for i, m := range sorted {
		keys[i] = QuotaKey(m)
	}
	sort.Strings(keys)
	return corev1ac.ResourceQuota(QuotaName, namespace).
		WithLabels(map[string]string{apply.LabelManagedBy: apply.ManagedByValue, "app.kubernetes.io/component": "microservice-quota"}).
		WithAnnotations(map[string]string{QuotaCoversAnnotation: strings.Join(keys, ",")}).
		WithOwnerReferences(owners...).
		WithSpec(corev1ac.ResourceQuotaSpec().
			WithHard(canonical(QuotaHard(sorted))).
			WithScopeSelector(corev1ac.ScopeSelector().
				WithMatchExpressions(corev1ac.ScopedResourceSelectorRequirement().
					WithScopeName(corev1.ResourceQuotaScopePriorityClass).
					WithOperator(corev1.ScopeSelectorOpIn).
					WithValues(PriorityClassName))))
}

// canonical rewrites quantities in the form the API server stores, so that
// comparing desired and live objects sees no false difference.
func canonical(l corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range l {
		out[k] = resource.MustParse(v.String())
	}
	return out
}
