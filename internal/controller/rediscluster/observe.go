package rediscluster

import (
	"context"
	"net"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/internal/redis"
)

// world is what one reconcile observed.
type world struct {
	pods    map[string]*corev1.Pod
	pvcs    map[string]*corev1.PersistentVolumeClaim
	desired redis.Desired
	obs     redis.Observed
	client  *redis.Client
	cfg     nodeConfig
	cfgErr  error
}

// observe lists the node pods and volumes and asks every node that runs
// how it sees the cluster (when the password is known).
func (r *Reconciler) observe(ctx context.Context, rc *redisv1alpha1.RedisCluster, password string, ask bool) (*world, error) {
	w := &world{pods: map[string]*corev1.Pod{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	sel := client.MatchingLabels(selectorLabels(rc))
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(rc.Namespace), sel); err != nil {
		return nil, err
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &pvcs, client.InNamespace(rc.Namespace), sel); err != nil {
		return nil, err
	}
	w.desired = redis.Desired{
		Name: rc.Name, Shards: int(rc.Spec.Size), ReplicasPerShard: rc.Spec.Replicas(),
		Members: map[string]redis.Endpoint{},
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		w.pods[p.Name] = p
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		if e, ok := r.endpoint(p); ok {
			w.desired.Members[p.Name] = e
		}
	}
	for i := range pvcs.Items {
		w.pvcs[pvcs.Items[i].Name] = &pvcs.Items[i]
	}
	if ask && len(w.desired.Members) > 0 {
		w.client = r.client(client.ObjectKeyFromObject(rc), password)
		w.obs = w.client.Observe(ctx, w.desired.Members)
	} else {
		w.obs = redis.NewObserved(nil)
	}
	return w, nil
}

func (r *Reconciler) endpoint(p *corev1.Pod) (redis.Endpoint, bool) {
	if r.Endpoint != nil {
		return r.Endpoint(p)
	}
	if p.Status.PodIP == "" || net.ParseIP(p.Status.PodIP) == nil {
		return redis.Endpoint{}, false
	}
	return redis.Endpoint{IP: p.Status.PodIP, Port: clientPort, BusPort: busPort}, true
}

// member reports whether name is a node of rc's shape, and its shard.
func member(rc *redisv1alpha1.RedisCluster, name string) (shard, replica int, ok bool) {
	d := redis.Desired{Name: rc.Name, Shards: int(rc.Spec.Size), ReplicasPerShard: rc.Spec.Replicas()}
	return d.ShardOf(name)
}
