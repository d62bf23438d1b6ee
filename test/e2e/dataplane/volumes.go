package dataplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Modes the kubelet uses when the pod spec gives none.
const (
	defaultVolumeFileMode int32 = 0o644
	emptyDirMode                = 0o777
)

// materializeVolumes writes every volume of pod under podDir and returns
// volume name -> host directory. PVCs live under pvcDir, keyed by claim
// name, so that they survive pod replacement as real claims do.
func (r *Runner) materializeVolumes(ctx context.Context, pod *corev1.Pod, podDir, pvcDir string) (map[string]string, error) {
	fsGroup := -1
	if sc := pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		fsGroup = int(*sc.FSGroup)
	}
	dirs := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(podDir, "volumes", v.Name)
		var err error
		switch {
		case v.ConfigMap != nil:
			err = r.writeConfigMap(ctx, pod.Namespace, dir, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.DefaultMode, v.ConfigMap.Optional, fsGroup)
		case v.Secret != nil:
			err = r.writeSecret(ctx, pod.Namespace, dir, v.Secret.SecretName, v.Secret.Items, v.Secret.DefaultMode, v.Secret.Optional, fsGroup)
		case v.EmptyDir != nil:
			err = makeDir(dir, emptyDirMode, -1)
		case v.PersistentVolumeClaim != nil:
			dir = filepath.Join(pvcDir, v.PersistentVolumeClaim.ClaimName)
			// A fresh volume is owned by the fsGroup, group-writable and
			// setgid, as the kubelet makes it.
			err = makeDir(dir, 0o2775, fsGroup)
		case v.Projected != nil:
			err = r.writeProjected(ctx, pod, dir, v.Projected, fsGroup)
		default:
			err = fmt.Errorf("volume type not supported by the data-plane runner")
		}
		if err != nil {
			return nil, fmt.Errorf("volume %q of pod %s/%s: %w", v.Name, pod.Namespace, pod.Name, err)
		}
		dirs[v.Name] = dir
	}
	return dirs, nil
}

func makeDir(dir string, mode os.FileMode, gid int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if gid >= 0 {
		if err := os.Chown(dir, 0, gid); err != nil {
			return err
		}
	}
	// MkdirAll applies the umask; the kubelet's modes are exact.
	return os.Chmod(dir, mode|modeBits(mode))
}

// modeBits carries setgid over into os.FileMode.
func modeBits(mode os.FileMode) os.FileMode {
	if mode&0o2000 != 0 {
		return os.ModeSetgid
	}
	return 0
}

// writeFile writes one volume file with the kubelet's ownership: root, and
// the fsGroup as group when the pod has one.
func writeFile(dir, rel string, data []byte, mode int32, fsGroup int) error {
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return err
	}
	if fsGroup >= 0 {
		if err := os.Chown(p, 0, fsGroup); err != nil {
			return err
		}
	}
	return os.Chmod(p, os.FileMode(mode))
}

// writeKeys writes data (all keys, or the items) like the kubelet's
// ConfigMap/Secret volume plugins.
func writeKeys(dir, what string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, fsGroup int) error {
	mode := defaultVolumeFileMode
	if defaultMode != nil {
		mode = *defaultMode
	}
	if len(items) == 0 {
		for k, v := range data {
			if err := writeFile(dir, k, v, mode, fsGroup); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("%s has no key %q", what, it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = *it.Mode
		}
		if err := writeFile(dir, it.Path, v, m, fsGroup); err != nil {
			return err
		}
	}
	return nil
}

func configMapData(cm *corev1.ConfigMap) map[string][]byte {
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return data
}

func (r *Runner) writeConfigMap(ctx context.Context, ns, dir, name string, items []corev1.KeyToPath, defaultMode *int32, optional *bool, fsGroup int) error {
	if err := makeDir(dir, 0o755, -1); err != nil {
		return err
	}
	cm, err := r.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ConfigMap %s: %w", name, err)
	}
	return writeKeys(dir, "ConfigMap "+name, configMapData(cm), items, defaultMode, fsGroup)
}

func (r *Runner) writeSecret(ctx context.Context, ns, dir, name string, items []corev1.KeyToPath, defaultMode *int32, optional *bool, fsGroup int) error {
	if err := makeDir(dir, 0o755, -1); err != nil {
		return err
	}
	s, err := r.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil
	}
	if err != nil {
		return fmt.Errorf("Secret %s: %w", name, err)
	}
	return writeKeys(dir, "Secret "+name, s.Data, items, defaultMode, fsGroup)
}

func (r *Runner) writeProjected(ctx context.Context, pod *corev1.Pod, dir string, p *corev1.ProjectedVolumeSource, fsGroup int) error {
	if err := makeDir(dir, 0o755, -1); err != nil {
		return err
	}
	mode := defaultVolumeFileMode
	if p.DefaultMode != nil {
		mode = *p.DefaultMode
	}
	for _, src := range p.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			sat := src.ServiceAccountToken
			req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				ExpirationSeconds: sat.ExpirationSeconds,
				BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
			}}
			if sat.Audience != "" {
				req.Spec.Audiences = []string{sat.Audience}
			}
			sa := pod.Spec.ServiceAccountName
			if sa == "" {
				sa = "default"
			}
			tr, err := r.kube.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("token for ServiceAccount %s: %w", sa, err)
			}
			if err := writeFile(dir, sat.Path, []byte(tr.Status.Token), mode, fsGroup); err != nil {
				return err
			}
		case src.ConfigMap != nil:
			cm, err := r.kube.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, src.ConfigMap.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && src.ConfigMap.Optional != nil && *src.ConfigMap.Optional {
				continue
			}
			if err != nil {
				return fmt.Errorf("ConfigMap %s: %w", src.ConfigMap.Name, err)
			}
			if err := writeKeys(dir, "ConfigMap "+cm.Name, configMapData(cm), src.ConfigMap.Items, &mode, fsGroup); err != nil {
				return err
			}
		case src.Secret != nil:
			s, err := r.kube.CoreV1().Secrets(pod.Namespace).Get(ctx, src.Secret.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && src.Secret.Optional != nil && *src.Secret.Optional {
				continue
			}
			if err != nil {
				return fmt.Errorf("Secret %s: %w", src.Secret.Name, err)
			}
			if err := writeKeys(dir, "Secret "+s.Name, s.Data, src.Secret.Items, &mode, fsGroup); err != nil {
				return err
			}
		case src.DownwardAPI != nil:
			for _, it := range src.DownwardAPI.Items {
				if it.FieldRef == nil {
					return fmt.Errorf("downward API item %q: only fieldRef is supported", it.Path)
				}
				v, err := podField(pod, it.FieldRef.FieldPath)
				if err != nil {
					return err
				}
				m := mode
				if it.Mode != nil {
					m = *it.Mode
				}
				if err := writeFile(dir, it.Path, []byte(v), m, fsGroup); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("projected source not supported by the data-plane runner")
		}
	}
	return nil
}

// podField resolves the downward-API fields a data-plane pod may use.
func podField(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "status.podIP", "status.hostIP":
		return podIP, nil
	}
	return "", fmt.Errorf("downward API field %q not supported by the data-plane runner", path)
}

// resolveEnv resolves a container's env like the kubelet.
func (r *Runner) resolveEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]string, error) {
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if src := e.ValueFrom; src != nil {
			switch {
			case src.SecretKeyRef != nil:
				ref := src.SecretKeyRef
				s, err := r.kube.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
				if err != nil {
					if apierrors.IsNotFound(err) && ref.Optional != nil && *ref.Optional {
						continue
					}
					return nil, fmt.Errorf("env %s: Secret %s: %w", e.Name, ref.Name, err)
				}
				b, ok := s.Data[ref.Key]
				if !ok {
					return nil, fmt.Errorf("env %s: Secret %s has no key %q", e.Name, ref.Name, ref.Key)
				}
				v = string(b)
			case src.ConfigMapKeyRef != nil:
				ref := src.ConfigMapKeyRef
				cm, err := r.kube.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
				if err != nil {
					if apierrors.IsNotFound(err) && ref.Optional != nil && *ref.Optional {
						continue
					}
					return nil, fmt.Errorf("env %s: ConfigMap %s: %w", e.Name, ref.Name, err)
				}
				s, ok := cm.Data[ref.Key]
				if !ok {
					return nil, fmt.Errorf("env %s: ConfigMap %s has no key %q", e.Name, ref.Name, ref.Key)
				}
				v = s
			case src.FieldRef != nil:
				s, err := podField(pod, src.FieldRef.FieldPath)
				if err != nil {
					return nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
				v = s
			default:
				return nil, fmt.Errorf("env %s: source not supported by the data-plane runner", e.Name)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	if len(c.EnvFrom) > 0 {
		return nil, fmt.Errorf("container %s: envFrom not supported by the data-plane runner", c.Name)
	}
	return env, nil
}

func itoa(i int) string { return strconv.Itoa(i) }
