package imageregistry

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/objectmeta"
	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
)

// Pod-level settings. 65532 is the conventional "nonroot" user of
// distroless images; the fsGroup makes the data volume and the mounted
// Secrets readable and writable for it.
const (
	podUser            int64 = 65532
	defaultStorageSize       = "8Gi"
	dataVolume               = "data"
	// Mode of mounted ConfigMaps and Secrets; set explicitly because the
	// API would default it and that would look like drift.
	configFileMode int32 = 0o444
	secretFileMode int32 = 0o440
	// tokenExpirationSeconds of the projected ServiceAccount token in the
	// auth container (the kubelet refreshes it well before).
	tokenExpirationSeconds int64 = 3607
)

// configHash is the SHA-256 over everything mounted into the pod that the
// processes only read at start: a change rolls the pods.
func configHash(st *syncState) string {
	h := sha256.New()
	parts := [][]byte{
		st.registryConfig, st.trust.jwks, st.authConfig,
		st.tls.certPEM, st.tls.keyPEM,
		st.token.certPEM, st.token.keyPEM,
		st.httpSecret,
	}
	if len(st.s3CA) > 0 {
		// Only when set: the hash of every other registry stays.
		parts = append(parts, st.s3CA)
	}
	for _, b := range parts {
		// Length-prefixed, so that moving bytes between parts changes the hash.
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Controller) ensureStatefulSet(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	cur, err := lookup(c.statefulSetsLister.StatefulSets(reg.Namespace).Get(statefulSetName(reg)))
	if err != nil {
		return err
	}
	if cur != nil {
		if err := checkControlled(reg, "StatefulSet", cur); err != nil {
			return err
		}
	}
	st.claims = decideClaimLayout(reg, cur)
	if st.claims == oneSharedClaim {
		if err := c.ensureSharedClaim(ctx, reg); err != nil {
			return err
		}
	}
	st.degraded = storageNotShared(reg, st.claims, cur)
	desired := c.desiredStatefulSet(reg, st)
	if err := c.annotateUserCredentials(ctx, reg, st, desired); err != nil {
		return err
	}
	if cur != nil && st.claims == claimPerPod && st.degraded == nil && !volumeClaimTemplatesMatch(cur.Spec.VolumeClaimTemplates, desired.Spec.VolumeClaimTemplates) {
		// volumeClaimTemplates are immutable, and existing claims keep their
		// size anyway: tell the user rather than fight the API. (Deleting
		// the StatefulSet would need a right the operator does without.)
		msg := fmt.Sprintf("StatefulSet %s keeps its volume claim template: spec.persistentVolumeClaim changes apply only to new registries", cur.Name)
		klog.FromContext(ctx).Info(msg, "imageRegistry", klog.KObj(reg))
		c.recorder.Event(reg, corev1.EventTypeWarning, EventReasonVolumeClaimTemplateImmutable, msg)
	}
	sts, err := ensureObject(ctx, c, reg, "StatefulSet", cur, desired, c.kubeClient.AppsV1().StatefulSets(reg.Namespace), mergeStatefulSet)
	if err != nil {
		return err
	}
	st.statefulSet = sts
	return nil
}

func replicas(reg *v1alpha1.ImageRegistry) int32 {
	if reg.Spec.Replicas == nil {
		return 1
	}
	return *reg.Spec.Replicas
}

func (c *Controller) desiredStatefulSet(reg *v1alpha1.ImageRegistry, st *syncState) *appsv1.StatefulSet {
	podLabels := objectLabels(reg)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: statefulSetName(reg), Labels: objectLabels(reg)},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas(reg)),
			ServiceName: headlessServiceName(reg),
			Selector:    &metav1.LabelSelector{MatchLabels: selectorLabels(reg)},
			// Replicas share storage (RWX or S3) and need no start order.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: podLabels,
					Annotations: map[string]string{
						v1alpha1.AnnotationConfigHash:       configHash(st),
						v1alpha1.AnnotationTokenSigningKey:  st.trust.signingKID,
						v1alpha1.AnnotationTrustedTokenKeys: st.trust.trustedKeysAnnotation(),
						// Whether the pods run in maintenance mode (gc.go).
						v1alpha1.AnnotationReadOnly: strconv.FormatBool(st.readOnly),
					},
				},
				Spec: c.podSpec(reg, st),
			},
		},
	}
	if st.claims == claimPerPod {
		sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{volumeClaimTemplate(reg)}
	}
	return sts
}

func volumeClaimTemplate(reg *v1alpha1.ImageRegistry) corev1.PersistentVolumeClaim {
	spec := reg.Spec.PersistentVolumeClaim
	modes := spec.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	res := *spec.Resources.DeepCopy()
	if _, ok := res.Requests[corev1.ResourceStorage]; !ok {
		if res.Requests == nil {
			res.Requests = corev1.ResourceList{}
		}
		res.Requests[corev1.ResourceStorage] = resource.MustParse(defaultStorageSize)
	}
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: dataVolume, Labels: selectorLabels(reg)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      append([]corev1.PersistentVolumeAccessMode{}, modes...),
			StorageClassName: spec.StorageClassName,
			Resources:        res,
		},
	}
}

func (c *Controller) podSpec(reg *v1alpha1.ImageRegistry, st *syncState) corev1.PodSpec {
	dockerAuth := reg.Spec.Auth.Server == v1alpha1.AuthServerDockerAuth
	tlsSecret := tlsSecretName(reg)
	if t := reg.Spec.TLS; t != nil && t.SecretName != "" {
		tlsSecret = t.SecretName
	}
	tokenSecret := tokenSecretName(reg)
	if ca := reg.Spec.Auth.CA; ca != nil && ca.SecretName != "" {
		tokenSecret = ca.SecretName
	}
	volumes := []corev1.Volume{
		configMapVolume("registry-config", registryConfigMapName(reg), registryConfigKey, jwksKey),
		configMapVolume("auth-config", st.authConfigMap, authConfigKey),
		secretVolume("tls", tlsSecret, corev1.TLSCertKey, corev1.TLSPrivateKeyKey),
		secretVolume("token", tokenSecret, corev1.TLSCertKey, corev1.TLSPrivateKeyKey),
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		serviceAccountTokenVolume(),
	}
	if st.claims == oneSharedClaim {
		volumes = append(volumes, sharedClaimVolume(reg))
	}
	_, s3Volumes, _ := s3Access(reg)
	volumes = append(volumes, s3Volumes...)
	if dockerAuth {
		volumes = append(volumes,
			corev1.Volume{Name: "ext-auth", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			// The ext_auth sidecar's socket, shared with docker_auth only.
			corev1.Volume{Name: extAuthSocketVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	spec := corev1.PodSpec{
		ServiceAccountName: authServiceAccountName(reg),
		// Only the auth container gets API credentials, through its own
		// projected volume; the registry container has none.
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(podUser),
			RunAsGroup:     ptr.To(podUser),
			FSGroup:        ptr.To(podUser),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Affinity:   podAntiAffinity(reg),
		Volumes:    volumes,
		Containers: []corev1.Container{c.registryContainer(reg), c.authContainer(reg, st.hostname, dockerAuth)},
	}
	if dockerAuth {
		spec.InitContainers = []corev1.Container{c.extAuthInstaller(reg)}
		spec.Containers = append(spec.Containers, c.extAuthSidecar(reg))
	}
	return spec
}

func (c *Controller) registryContainer(reg *v1alpha1.ImageRegistry) corev1.Container {
	image := c.opts.RegistryImage
	if i := reg.Spec.Images; i != nil && i.Registry != "" {
		image = i.Registry
	}
	env := []corev1.EnvVar{secretEnv("REGISTRY_HTTP_SECRET", httpSecretName(reg), httpSecretKey)}
	mounts := []corev1.VolumeMount{
		{Name: "registry-config", MountPath: registryConfigDir, ReadOnly: true},
		{Name: "tls", MountPath: tlsDir, ReadOnly: true},
		{Name: "tmp", MountPath: "/tmp"},
	}
	if s3Storage(reg) != nil {
		s3Env, _, s3Mounts := s3Access(reg)
		env = append(env, s3Env...)
		mounts = append(mounts, s3Mounts...)
	} else {
		mounts = append(mounts, corev1.VolumeMount{Name: dataVolume, MountPath: dataDir})
	}
	if p := reg.Spec.Proxy; p != nil && p.CredentialsSecret != "" {
		// The upstream login, kept out of the ConfigMap.
		env = append(env,
			secretEnv("REGISTRY_PROXY_USERNAME", p.CredentialsSecret, proxyUsernameKey),
			secretEnv("REGISTRY_PROXY_PASSWORD", p.CredentialsSecret, proxyPasswordKey))
	}
	return corev1.Container{
		Name:  "registry",
		Image: image,
		// The image's entrypoint script would do the same; calling the
		// binary directly does not depend on it.
		Command: []string{"registry", "serve", registryConfigDir + "/" + registryConfigKey},
		Ports:   []corev1.ContainerPort{{Name: "registry", ContainerPort: registryPort, Protocol: corev1.ProtocolTCP}},
		Env:     env,
		// The registry answers GET / with 200 without authentication, and
		// with 503 when its storage health check fails: ready means able to serve.
		ReadinessProbe: probe(httpsGet("/", registryPort), 5),
		// Liveness only asks whether the process serves: restarting does not
		// heal a storage outage.
		LivenessProbe:            probe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(registryPort)}}, 15),
		Resources:                requests("100m", "128Mi"),
		VolumeMounts:             mounts,
		SecurityContext:          containerSecurityContext(),
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func (c *Controller) authContainer(reg *v1alpha1.ImageRegistry, hostname string, dockerAuth bool) corev1.Container {
	ctr := corev1.Container{
		Name:  "auth",
		Ports: []corev1.ContainerPort{{Name: "auth", ContainerPort: authPort, Protocol: corev1.ProtocolTCP}},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "auth-config", MountPath: authConfigDir, ReadOnly: true},
			{Name: "tls", MountPath: tlsDir, ReadOnly: true},
			{Name: "token", MountPath: tokenDir, ReadOnly: true},
			{Name: "kube-api-access", MountPath: serviceAccountDir, ReadOnly: true},
		},
		Resources:                requests("50m", "64Mi"),
		SecurityContext:          containerSecurityContext(),
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	configFile := authConfigDir + "/" + authConfigKey
	if dockerAuth {
		ctr.Image = c.opts.DockerAuthImage
		if i := reg.Spec.Images; i != nil && i.DockerAuth != "" {
			ctr.Image = i.DockerAuth
		}
		// The image's entrypoint is /docker_auth/auth_server; its argument
		// is the configuration file. glog writes log files under /tmp
		// unless told otherwise, and exits when it cannot (the root file
		// system is read-only): log to stderr, where kubectl logs finds it.
		ctr.Args = []string{"--logtostderr", configFile}
		// The ext_auth processes ask the sidecar over its socket (connecting
		// needs no write access to the mount); the ServiceAccount token
		// stays for their fallback, which reads the accounts itself.
		ctr.VolumeMounts = append(ctr.VolumeMounts,
			corev1.VolumeMount{Name: "ext-auth", MountPath: extAuthDir, ReadOnly: true},
			corev1.VolumeMount{Name: extAuthSocketVolume, MountPath: extAuthSocketDir, ReadOnly: true})
		// docker_auth has no health endpoint.
		tcp := corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(authPort)}}
		ctr.ReadinessProbe, ctr.LivenessProbe = probe(tcp, 5), probe(tcp, 15)
		return ctr
	}
	ctr.Image = c.authImage(reg)
	// Tokens only for this registry's hostname; metrics on a port of their
	// own, which the Service does not expose.
	ctr.Command = []string{builtinAuthCommand, "--config", configFile, "--service=" + hostname, fmt.Sprintf("--metrics-addr=:%d", authMetricsPort)}
	ctr.Ports = append(ctr.Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: authMetricsPort, Protocol: corev1.ProtocolTCP})
	// Its own port, never the registry's: the old system's auth liveness
	// probe pointed at the registry.
	ctr.ReadinessProbe, ctr.LivenessProbe = probe(httpsGet("/healthz", authPort), 5), probe(httpsGet("/healthz", authPort), 15)
	return ctr
}

func (c *Controller) authImage(reg *v1alpha1.ImageRegistry) string {
	if i := reg.Spec.Images; i != nil && i.Auth != "" {
		return i.Auth
	}
	return c.opts.AuthImage
}

// extAuthInstaller copies our authenticator from the operator image into
// the volume docker_auth runs it from (config ext_auth.command).
func (c *Controller) extAuthInstaller(reg *v1alpha1.ImageRegistry) corev1.Container {
	return corev1.Container{
		Name:                     "install-ext-auth",
		Image:                    c.authImage(reg),
		Command:                  []string{pluginInImage, "--install-to", extAuthFile},
		VolumeMounts:             []corev1.VolumeMount{{Name: "ext-auth", MountPath: extAuthDir}},
		Resources:                requests("10m", "16Mi"),
		SecurityContext:          containerSecurityContext(),
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// The ext_auth sidecar: where it listens, and its health port.
var (
	extAuthSocketDir  = path.Dir(extauth.DefaultSocket)
	extAuthSocketFlag = "--serve=" + extauth.DefaultSocket
)

const (
	extAuthSocketVolume       = "ext-auth-socket"
	extAuthHealthPort   int32 = 5002
)

// extAuthSidecar keeps the account informer and the verified-login cache
// of pkg/authn, as the builtin token server does in-process, and answers
// docker_auth's ext_auth processes over a Unix socket (plugin/README.md).
// Without it they check each login on their own, only slower.
func (c *Controller) extAuthSidecar(reg *v1alpha1.ImageRegistry) corev1.Container {
	health := func(p string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: p, Port: intstr.FromInt32(extAuthHealthPort), Scheme: corev1.URISchemeHTTP}}
	}
	return corev1.Container{
		Name:    "authn",
		Image:   c.authImage(reg),
		Command: []string{pluginInImage, extAuthSocketFlag, "--namespace=" + reg.Namespace, "--registry=" + reg.Name, fmt.Sprintf("--health-addr=:%d", extAuthHealthPort)},
		VolumeMounts: []corev1.VolumeMount{
			{Name: extAuthSocketVolume, MountPath: extAuthSocketDir},
			{Name: "kube-api-access", MountPath: serviceAccountDir, ReadOnly: true},
		},
		// Ready once its account cache is synced; before that the ext_auth
		// processes fall back to checking logins themselves.
		ReadinessProbe:           probe(health("/readyz"), 5),
		LivenessProbe:            probe(health("/healthz"), 15),
		Resources:                requests("50m", "64Mi"),
		SecurityContext:          containerSecurityContext(),
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func containerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// probe sets every field the API would otherwise default, so that a
// defaulted probe is no drift.
func probe(h corev1.ProbeHandler, period int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        h,
		InitialDelaySeconds: 2,
		TimeoutSeconds:      3,
		PeriodSeconds:       period,
		SuccessThreshold:    1,
		FailureThreshold:    3,
	}
}

func httpsGet(path string, port int32) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTPS}}
}

func requests(cpu, memory string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(memory),
	}}
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key,
	}}}
}

func configMapVolume(name, configMap string, keys ...string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: configMap},
		Items:                keyItems(keys),
		DefaultMode:          ptr.To(configFileMode),
	}}}
}

func secretVolume(name, secret string, keys ...string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  secret,
		Items:       keyItems(keys),
		DefaultMode: ptr.To(secretFileMode),
	}}}
}

func keyItems(keys []string) []corev1.KeyToPath {
	items := make([]corev1.KeyToPath, len(keys))
	for i, k := range keys {
		items[i] = corev1.KeyToPath{Key: k, Path: k}
	}
	return items
}

// serviceAccountTokenVolume is what the kubelet would automount, spelt out
// so that only the auth container mounts it.
func serviceAccountTokenVolume() corev1.Volume {
	return corev1.Volume{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To(configFileMode),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To(tokenExpirationSeconds)}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path:     "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
			}}}},
		},
	}}}
}

// mergeStatefulSet repairs the fields the controller sets: replicas, the
// pod template's labels and annotations, and the parts of the pod spec it
// builds. Fields the API defaults inside containers (terminationMessagePath,
// ...) are not compared. Immutable fields (selector, serviceName,
// volumeClaimTemplates, podManagementPolicy) are left as created.
func mergeStatefulSet(cur, desired *appsv1.StatefulSet) bool {
	changed := false
	if !equality.Semantic.DeepEqual(cur.Spec.Replicas, desired.Spec.Replicas) {
		cur.Spec.Replicas = desired.Spec.Replicas
		changed = true
	}
	tmpl := &cur.Spec.Template
	changed = objectmeta.Merge(tmpl, &desired.Spec.Template) || changed
	have, want := &tmpl.Spec, &desired.Spec.Template.Spec
	if have.ServiceAccountName != want.ServiceAccountName ||
		!equality.Semantic.DeepEqual(have.AutomountServiceAccountToken, want.AutomountServiceAccountToken) ||
		!equality.Semantic.DeepEqual(have.EnableServiceLinks, want.EnableServiceLinks) ||
		!equality.Semantic.DeepEqual(have.SecurityContext, want.SecurityContext) ||
		!equality.Semantic.DeepEqual(have.Affinity, want.Affinity) ||
		!equality.Semantic.DeepEqual(have.Volumes, want.Volumes) ||
		!containersMatch(have.InitContainers, want.InitContainers) ||
		!containersMatch(have.Containers, want.Containers) {
		have.ServiceAccountName = want.ServiceAccountName
		have.DeprecatedServiceAccount = ""
		have.AutomountServiceAccountToken = want.AutomountServiceAccountToken
		have.EnableServiceLinks = want.EnableServiceLinks
		have.SecurityContext = want.SecurityContext
		have.Affinity = want.Affinity
		have.Volumes = want.Volumes
		have.InitContainers = want.InitContainers
		have.Containers = want.Containers
		changed = true
	}
	return changed
}

func containersMatch(have, want []corev1.Container) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range want {
		h, w := have[i], want[i]
		if h.Name != w.Name || h.Image != w.Image || h.ImagePullPolicy != w.ImagePullPolicy ||
			h.TerminationMessagePolicy != w.TerminationMessagePolicy ||
			!equality.Semantic.DeepEqual(h.Command, w.Command) ||
			!equality.Semantic.DeepEqual(h.Args, w.Args) ||
			!equality.Semantic.DeepEqual(h.Env, w.Env) ||
			!equality.Semantic.DeepEqual(h.Ports, w.Ports) ||
			!equality.Semantic.DeepEqual(h.VolumeMounts, w.VolumeMounts) ||
			!equality.Semantic.DeepEqual(h.ReadinessProbe, w.ReadinessProbe) ||
			!equality.Semantic.DeepEqual(h.LivenessProbe, w.LivenessProbe) ||
			!equality.Semantic.DeepEqual(h.Resources, w.Resources) ||
			!equality.Semantic.DeepEqual(h.SecurityContext, w.SecurityContext) {
			return false
		}
	}
	return true
}

// volumeClaimTemplatesMatch compares what spec.persistentVolumeClaim sets.
func volumeClaimTemplatesMatch(have, want []corev1.PersistentVolumeClaim) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range want {
		h, w := have[i].Spec, want[i].Spec
		if have[i].Name != want[i].Name ||
			!equality.Semantic.DeepEqual(h.AccessModes, w.AccessModes) ||
			!equality.Semantic.DeepEqual(h.StorageClassName, w.StorageClassName) ||
			!equality.Semantic.DeepEqual(h.Resources, w.Resources) {
			return false
		}
	}
	return true
}
