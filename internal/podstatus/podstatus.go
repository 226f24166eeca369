// Package podstatus reads what the pods of a stateful workload show about
// themselves, for the status of the resource that runs them: which are
// ready, and why the others are not.
package podstatus

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// MaxProblems bounds how many pods Problems names.
const MaxProblems = 3

// Ready reports whether the pod's Ready condition is True.
func Ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Problems says why pods that are not ready are not, from what their
// status shows: not scheduled (with the scheduler's reason, such as a
// volume claim no volume can satisfy), a container waiting (an image that
// cannot be pulled, a crash loop), or running without answering.
// running(p) is what to say of a running pod, or "" when it is fine: the
// workload knows what "answering" means. Problems names at most
// MaxProblems pods, in name order; "" when no pod shows a problem.
// Everything in it comes from the pods' status (and running), so it stays
// the same from one reconcile to the next while nothing changes.
func Problems(pods map[string]*corev1.Pod, running func(*corev1.Pod) string) string {
	names := make([]string, 0, len(pods))
	for name := range pods {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []string
	for _, name := range names {
		if why := problem(pods[name], running); why != "" {
			out = append(out, "pod "+name+" "+why)
		}
	}
	if n := len(out); n > MaxProblems {
		out = append(out[:MaxProblems], fmt.Sprintf("and %d more", n-MaxProblems))
	}
	return strings.Join(out, "; ")
}

func problem(p *corev1.Pod, running func(*corev1.Pod) string) string {
	if !p.DeletionTimestamp.IsZero() {
		return ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "is not scheduled: " + strings.TrimSpace(c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			msg := "container " + cs.Name + " is waiting: " + w.Reason
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return msg
		}
	}
	if p.Status.Phase != corev1.PodRunning {
		return ""
	}
	return running(p)
}
