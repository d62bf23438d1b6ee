package framework

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DaemonSetPod is the Pod the DaemonSet controller would make for ds on the
// node, with what this control plane lacks filled in: it runs no scheduler
// or DaemonSet controller (the Pod names the node), no Service routing (the
// Pod uses the host's network, and KUBERNETES_SERVICE_HOST/PORT name the
// API server's loopback address) and no ServiceAccount admission (the
// projected token volume it would add is added here). Everything else is
// the template's.
func (n *Node) DaemonSetPod(ds *appsv1.DaemonSet, name string) (*corev1.Pod, error) {
	host, port, ok := strings.Cut(strings.TrimPrefix(n.cp.APIServerURL, "https://"), ":")
	if !ok {
		return nil, fmt.Errorf("API server URL %s has no port", n.cp.APIServerURL)
	}
	spec := *ds.Spec.Template.Spec.DeepCopy()
	spec.NodeName = n.Name
	spec.HostNetwork = true
	expiry := int64(3600)
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &expiry}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		},
	}}})
	for i := range spec.Containers {
		c := &spec.Containers[i]
		c.Env = append(c.Env, corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: host}, corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: port})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true})
	}
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ds.Namespace, Labels: ds.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: &yes}}},
		Spec: spec,
	}, nil
}
