package appservice

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
)

func sample(ports ...appsv1alpha1.AppServicePort) *appsv1alpha1.AppService {
	return &appsv1alpha1.AppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "nginx-app", UID: "uid-1", Generation: 4},
		Spec: appsv1alpha1.AppServiceSpec{
			Size:  ptr.To[int32](2),
			Image: "nginx:1.7.9",
			Ports: ports,
		},
	}
}

func TestDeploymentPorts(t *testing.T) {
	tests := []struct {
		name      string
		ports     []appsv1alpha1.AppServicePort
		wantPorts []corev1.Protocol // one per container port, in order
		wantNums  []int32
		wantProbe int32 // 0: no readiness probe
	}{
		{
			name:      "seed sample",
			ports:     []appsv1alpha1.AppServicePort{{Port: 80, TargetPort: 80, NodePort: 30002}},
			wantPorts: []corev1.Protocol{corev1.ProtocolTCP}, wantNums: []int32{80}, wantProbe: 80,
		},
		{
			name:      "targetPort defaults to port",
			ports:     []appsv1alpha1.AppServicePort{{Port: 8080}},
			wantPorts: []corev1.Protocol{corev1.ProtocolTCP}, wantNums: []int32{8080}, wantProbe: 8080,
		},
		{
			name: "two service ports on one container port are listed once",
			ports: []appsv1alpha1.AppServicePort{
				{Port: 80, TargetPort: 8080}, {Port: 8080, TargetPort: 8080},
			},
			wantPorts: []corev1.Protocol{corev1.ProtocolTCP}, wantNums: []int32{8080}, wantProbe: 8080,
		},
		{
			name: "UDP only has no TCP probe",
			ports: []appsv1alpha1.AppServicePort{
				{Port: 53, Protocol: corev1.ProtocolUDP},
			},
			wantPorts: []corev1.Protocol{corev1.ProtocolUDP}, wantNums: []int32{53},
		},
		{
			name: "probe on the first TCP port",
			ports: []appsv1alpha1.AppServicePort{
				{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 53, Protocol: corev1.ProtocolTCP}, {Port: 9000},
			},
			wantPorts: []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP, corev1.ProtocolTCP},
			wantNums:  []int32{53, 53, 9000}, wantProbe: 53,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Deployment(sample(tt.ports...))
			c := d.Spec.Template.Spec.Containers[0]
			if len(c.Ports) != len(tt.wantNums) {
				t.Fatalf("container ports %d, want %d", len(c.Ports), len(tt.wantNums))
			}
			for i, p := range c.Ports {
				if *p.ContainerPort != tt.wantNums[i] || *p.Protocol != tt.wantPorts[i] {
					t.Errorf("port %d = %d/%s, want %d/%s", i, *p.ContainerPort, *p.Protocol, tt.wantNums[i], tt.wantPorts[i])
				}
			}
			switch {
			case tt.wantProbe == 0 && c.ReadinessProbe != nil:
				t.Errorf("unexpected readiness probe %+v", c.ReadinessProbe)
			case tt.wantProbe != 0 && (c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket.Port.IntVal != tt.wantProbe):
				t.Errorf("readiness probe %+v, want TCP %d", c.ReadinessProbe, tt.wantProbe)
			}
		})
	}
}

func TestDeploymentIdentityAndSafety(t *testing.T) {
	as := sample(appsv1alpha1.AppServicePort{Port: 80})
	d := Deployment(as)
	if *d.Name != "nginx-app" || *d.Namespace != "ns" || *d.Spec.Replicas != 2 {
		t.Errorf("name/namespace/replicas = %s/%s/%d", *d.Name, *d.Namespace, *d.Spec.Replicas)
	}
	ref := d.OwnerReferences[0]
	if *ref.UID != "uid-1" || !*ref.Controller || *ref.Kind != "AppService" || *ref.APIVersion != "apps.opsmith.io/v1alpha1" {
		t.Errorf("owner reference %+v", ref)
	}
	if d.Spec.Selector.MatchLabels[LabelAppService] != "nginx-app" || len(d.Spec.Selector.MatchLabels) != 1 {
		t.Errorf("selector %v must be the AppService label alone (it is immutable)", d.Spec.Selector.MatchLabels)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("pod template labels %v do not match selector", d.Spec.Template.Labels)
		}
	}
	if *d.Spec.Template.Spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pods must use the RuntimeDefault seccomp profile")
	}
	if *d.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation {
		t.Error("privilege escalation must be off")
	}
	if *d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Error("strategy must be RollingUpdate")
	}
}

func TestServicePorts(t *testing.T) {
	s := Service(sample(
		appsv1alpha1.AppServicePort{Port: 80, TargetPort: 8080, NodePort: 30002},
		appsv1alpha1.AppServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
	))
	if *s.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("type %s", *s.Spec.Type)
	}
	p0, p1 := s.Spec.Ports[0], s.Spec.Ports[1]
	if *p0.Name != "tcp-80" || *p0.Port != 80 || p0.TargetPort.IntVal != 8080 || *p0.NodePort != 30002 {
		t.Errorf("port 0 = %+v", p0)
	}
	if *p1.Name != "dns" || *p1.Protocol != corev1.ProtocolUDP || p1.TargetPort.IntVal != 53 || p1.NodePort != nil {
		t.Errorf("port 1 = %+v (nodePort must be left to Kubernetes)", p1)
	}
}

func TestEnvVarConversionKeepsEverySource(t *testing.T) {
	in := []corev1.EnvVar{
		{Name: "PLAIN", Value: "v"},
		{Name: "FIELD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k", Optional: ptr.To(true)}}},
	}
	for _, e := range in {
		out := envVar(e)
		if *out.Name != e.Name {
			t.Errorf("name %s", *out.Name)
		}
		switch e.Name {
		case "PLAIN":
			if *out.Value != "v" {
				t.Errorf("value %v", out.Value)
			}
		case "FIELD":
			if *out.ValueFrom.FieldRef.FieldPath != "status.podIP" {
				t.Errorf("fieldRef %+v", out.ValueFrom.FieldRef)
			}
		case "SECRET":
			r := out.ValueFrom.SecretKeyRef
			if *r.Name != "s" || *r.Key != "k" || !*r.Optional {
				t.Errorf("secretKeyRef %+v", r)
			}
		}
	}
}
