package rediscluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// Reasons of the blocks this file reports.
const (
	ReasonAuthSecretMissing = "AuthSecretMissing"
	ReasonAuthSecretInvalid = "AuthSecretInvalid"
)

// passwordBytes is the length of a generated password, before hex.
const passwordBytes = 32

// password returns the nodes' password: from the Secret spec.auth names,
// or from the Secret the operator generated (creating it once, unless
// paused). The password never leaves this package but to the nodes'
// redis.conf Secret and the Redis client.
func (r *Reconciler) password(ctx context.Context, rc *redisv1alpha1.RedisCluster) (string, error) {
	name := AuthSecretName(rc)
	var s corev1.Secret
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: rc.Namespace, Name: name}, &s)
	switch {
	case err == nil:
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("reading the auth Secret %s/%s: %w", rc.Namespace, name, err)
	case rc.Spec.Auth.SecretName != "":
		b := apply.Blocked(ReasonAuthSecretMissing,
			"Secret %s named by spec.auth.secretName does not exist; create it with the password under key %q", name, redisv1alpha1.PasswordKey)
		b.RecheckAfter = apply.RecheckForeign
		return "", b
	case rc.Spec.Paused:
		return "", apply.Blocked(ReasonAuthSecretMissing, "the auth Secret %s does not exist and the cluster is paused", name)
	default:
		return r.generatePassword(ctx, rc)
	}
	if rc.Spec.Auth.SecretName == "" && !ownedBy(&s, rc) {
		b := apply.Blocked(apply.ReasonNameConflict,
			"a Secret named %s already exists and is not managed by this RedisCluster; rename or delete it, or name it in spec.auth.secretName", name)
		b.RecheckAfter = apply.RecheckForeign
		return "", b
	}
	pw := string(s.Data[redisv1alpha1.PasswordKey])
	if pw == "" {
		b := apply.Blocked(ReasonAuthSecretInvalid, "Secret %s has no key %q (or it is empty)", name, redisv1alpha1.PasswordKey)
		b.RecheckAfter = apply.RecheckForeign
		return "", b
	}
	return pw, nil
}

func ownedBy(obj client.Object, rc *redisv1alpha1.RedisCluster) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == rc.UID
}

// generatePassword creates the operator's auth Secret with a new random
// password. Create, not apply: a second reconcile racing with this one
// finds it and reads the password it holds.
func (r *Reconciler) generatePassword(ctx context.Context, rc *redisv1alpha1.RedisCluster) (string, error) {
	buf := make([]byte, passwordBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generating a password: %w", err)
	}
	pw := hex.EncodeToString(buf)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: GeneratedSecretName(rc), Namespace: rc.Namespace, Labels: objectLabels(rc),
			OwnerReferences: []metav1.OwnerReference{ownerReference(rc)},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{redisv1alpha1.PasswordKey: []byte(pw)},
	}
	if err := r.Client.Create(ctx, s); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("the auth Secret %s appeared while creating it; reading it again", s.Name)
		}
		return "", apply.Rejected(r.Recorder, rc, "Secret", s.Name, err)
	}
	r.Recorder.Eventf(rc, nil, corev1.EventTypeNormal, "Created", "CreateSecret", "generated the password into Secret %s", s.Name)
	return pw, nil
}
