package imageregistry

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// ensureServices keeps the LoadBalancer Service clients use and the
// headless Service that gives the StatefulSet's pods their DNS names.
func (c *Controller) ensureServices(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	for _, desired := range []*corev1.Service{loadBalancerService(reg, st.hostname), headlessService(reg)} {
		cur, err := lookup(c.servicesLister.Services(reg.Namespace).Get(desired.Name))
		if err != nil {
			return err
		}
		if _, err := ensureObject(ctx, c, reg, "Service", cur, desired, c.kubeClient.CoreV1().Services(reg.Namespace), mergeService); err != nil {
			return err
		}
	}
	return nil
}

func loadBalancerService(reg *v1alpha1.ImageRegistry, hostname string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:        serviceName(reg),
			Labels:      objectLabels(reg),
			Annotations: map[string]string{AnnotationExternalDNSHostname: hostname},
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: selectorLabels(reg),
			// Local keeps the client's address, which the token server's
			// per-client login budgets need (with Cluster every client
			// behind a node looks like that node). Set at creation only
			// (mergeService leaves it): an admin may choose Cluster.
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports: []corev1.ServicePort{
				{Name: "registry", Port: servicePort, TargetPort: intstr.FromInt32(registryPort), Protocol: corev1.ProtocolTCP},
				{Name: "auth", Port: authPort, TargetPort: intstr.FromInt32(authPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

func headlessService(reg *v1alpha1.ImageRegistry) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: headlessServiceName(reg), Labels: objectLabels(reg)},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: corev1.ClusterIPNone,
			Selector:  selectorLabels(reg),
			Ports: []corev1.ServicePort{
				{Name: "registry", Port: registryPort, TargetPort: intstr.FromInt32(registryPort), Protocol: corev1.ProtocolTCP},
				{Name: "auth", Port: authPort, TargetPort: intstr.FromInt32(authPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// mergeService repairs type, selector and ports. The API allocates node
// ports and cluster IPs and defaults many fields; those are kept, and a
// port's allocated nodePort is carried over so an update does not move it.
func mergeService(cur, desired *corev1.Service) bool {
	changed := false
	if cur.Spec.Type != desired.Spec.Type {
		cur.Spec.Type = desired.Spec.Type
		changed = true
	}
	if !equality.Semantic.DeepEqual(cur.Spec.Selector, desired.Spec.Selector) {
		cur.Spec.Selector = desired.Spec.Selector
		changed = true
	}
	if !portsMatch(cur.Spec.Ports, desired.Spec.Ports) {
		nodePorts := map[string]int32{}
		for _, p := range cur.Spec.Ports {
			nodePorts[p.Name] = p.NodePort
		}
		ports := make([]corev1.ServicePort, len(desired.Spec.Ports))
		for i, p := range desired.Spec.Ports {
			if desired.Spec.Type != corev1.ServiceTypeClusterIP {
				p.NodePort = nodePorts[p.Name]
			}
			ports[i] = p
		}
		cur.Spec.Ports = ports
		changed = true
	}
	return changed
}

// portsMatch compares the port fields we set, ignoring allocated nodePorts.
func portsMatch(have, want []corev1.ServicePort) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range want {
		h, w := have[i], want[i]
		if h.Name != w.Name || h.Port != w.Port || h.TargetPort != w.TargetPort || h.Protocol != w.Protocol {
			return false
		}
	}
	return true
}
