//go:build realnode

package e2enode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"opsmith.io/opsmith/test/operator"
	"opsmith.io/opsmith/test/testbed"
)

// nonRoot is the user (and group) the project's images and operands run
// as.
const nonRoot int64 = 65532

// TestDefaultStorageClassFSGroup checks the default StorageClass the way
// stateful operands use it: a claim waits for its first pod; a non-root pod
// with fsGroup writes the volume it gets (a local volume, whose group the
// kubelet sets to the fsGroup), a non-root pod without fsGroup cannot (as
// on a cloud provider's block volume); deleting the claim deletes the
// volume and its directory on the node.
func TestDefaultStorageClassFSGroup(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, k8s)
	dumpOnFailure(t, ns)
	for _, name := range []string{"with-fsgroup", "without-fsgroup"} {
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceStorage: resource.MustParse("16Mi")}},
			},
		}
		created, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ptr.Deref(created.Spec.StorageClassName, "") != testbed.DefaultStorageClass {
			t.Fatalf("claim %s got class %v, want the default %s", name, created.Spec.StorageClassName, testbed.DefaultStorageClass)
		}
	}
	// WaitForFirstConsumer: no volume while no pod uses the claim.
	time.Sleep(2 * time.Second)
	if c, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "with-fsgroup", metav1.GetOptions{}); err != nil ||
		c.Spec.VolumeName != "" || c.Status.Phase != corev1.ClaimPending {
		t.Fatalf("a claim no pod uses must wait: %+v, %v", c.Status, err)
	}

	restricted := func(fsGroup *int64) (*corev1.SecurityContext, *corev1.PodSecurityContext) {
		return &corev1.SecurityContext{
				RunAsUser: ptr.To(nonRoot), RunAsGroup: ptr.To(nonRoot), RunAsNonRoot: ptr.To(true),
				AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}, &corev1.PodSecurityContext{FSGroup: fsGroup,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	}
	csc, psc := restricted(ptr.To(nonRoot))
	writer := busyboxPod(ns, "writer", "set -e; mkdir /data/dir; echo written > /data/dir/file; ls -lnd /data /data/dir", "with-fsgroup", csc, psc)
	csc, psc = restricted(nil)
	denied := busyboxPod(ns, "denied", "echo x > /data/file", "without-fsgroup", csc, psc)
	for _, p := range []*corev1.Pod{writer, denied} {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if phase, out := waitPodDone(t, ctx, ns, "writer"); phase != corev1.PodSucceeded {
		t.Fatalf("a non-root pod with fsGroup could not write its volume:\n%s", out)
	}
	if phase, out := waitPodDone(t, ctx, ns, "denied"); phase != corev1.PodFailed || !strings.Contains(out, "Permission denied") {
		t.Errorf("a non-root pod without fsGroup wrote a fresh volume (%s):\n%s", phase, out)
	}

	pv := boundVolume(t, ctx, ns, "with-fsgroup")
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("volume %s has reclaim policy %s, want the class's Delete", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy)
	}
	dir := pv.Spec.Local.Path
	info, err := os.Stat(filepath.Join(dir, "dir", "file"))
	if err != nil {
		t.Fatalf("the file the pod wrote, on the node: %v", err)
	}
	if st := info.Sys().(*syscall.Stat_t); int64(st.Uid) != nonRoot || int64(st.Gid) != nonRoot {
		t.Errorf("file written by the pod is owned by %d:%d, want %d:%d", st.Uid, st.Gid, nonRoot, nonRoot)
	}
	root, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := root.Sys().(*syscall.Stat_t); int64(st.Gid) != nonRoot || root.Mode()&os.ModeSetgid == 0 {
		t.Errorf("volume root %s: group %d, mode %s; want the fsGroup %d with setgid, as the kubelet applies it", dir, st.Gid, root.Mode(), nonRoot)
	}
	deniedDir := boundVolume(t, ctx, ns, "without-fsgroup").Spec.Local.Path

	// Reclaim policy Delete: the claims go, so do their volumes and
	// directories.
	for _, p := range []string{"writer", "denied"} {
		if err := cs.CoreV1().Pods(ns).Delete(ctx, p, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"with-fsgroup", "without-fsgroup"} {
		if err := cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, c, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testbed.Eventually(t, 2*time.Minute, "the released volumes and their directories deleted", func() error {
		if _, err := cs.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("volume %s still there (%v)", pv.Name, err)
		}
		for _, d := range []string{dir, deniedDir} {
			if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("directory %s still there (%v)", d, err)
			}
		}
		return nil
	})
}

// boundVolume waits until the claim is bound and returns its volume,
// checked to be a local volume of the default class on the node.
func boundVolume(t *testing.T, ctx context.Context, ns, claim string) *corev1.PersistentVolume {
	t.Helper()
	var pv *corev1.PersistentVolume
	testbed.Eventually(t, time.Minute, "claim "+claim+" to be bound", func() error {
		c, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status.Phase != corev1.ClaimBound {
			return fmt.Errorf("claim is %s", c.Status.Phase)
		}
		pv, err = cs.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
		return err
	})
	if pv.Spec.Local == nil || pv.Spec.StorageClassName != testbed.DefaultStorageClass || pv.Spec.NodeAffinity == nil {
		t.Fatalf("volume %s is not a local volume of class %s on the node: %+v", pv.Name, testbed.DefaultStorageClass, pv.Spec)
	}
	return pv
}

// busyboxPod is a pod that runs script once with busybox, with the claim
// (when not "") at /data.
func busyboxPod(ns, name, script, claim string, sc *corev1.SecurityContext, psc *corev1.PodSecurityContext) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy:   corev1.RestartPolicyNever,
			SecurityContext: psc,
			Containers: []corev1.Container{{
				Name: "sh", Image: busyboxImage, Command: []string{"sh", "-c", script}, SecurityContext: sc,
			}},
		},
	}
	if claim != "" {
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
	}
	return pod
}

// waitPodDone waits until a pod that runs once has succeeded or failed and
// returns its phase and log.
func waitPodDone(t *testing.T, ctx context.Context, ns, name string) (corev1.PodPhase, string) {
	t.Helper()
	var phase corev1.PodPhase
	testbed.Eventually(t, 2*time.Minute, "pod "+name+" to finish", func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		phase = p.Status.Phase
		if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
			return nil
		}
		return fmt.Errorf("pod %s is %s", name, phase)
	})
	out, err := operator.Kubectl(cluster, "-n", ns, "logs", name)
	if err != nil {
		out += err.Error()
	}
	return phase, out
}
