package imageregistry

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/image-registry-operator/image-registry-operator/pkg/acl"
	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
)

// defaultTokenExpiration applies when spec.auth.tokenExpiration is unset.
const defaultTokenExpiration = 5 * time.Minute

// Paths of the mounted files, shared by the rendered configurations and
// the pod template.
var (
	tlsCertFile   = path.Join(tlsDir, corev1.TLSCertKey)
	tlsKeyFile    = path.Join(tlsDir, corev1.TLSPrivateKeyKey)
	tokenCertFile = path.Join(tokenDir, corev1.TLSCertKey)
	tokenKeyFile  = path.Join(tokenDir, corev1.TLSPrivateKeyKey)
	jwksFile      = path.Join(registryConfigDir, jwksKey)
	extAuthFile   = path.Join(extAuthDir, authconfig.ExtAuthCommand)
)

// tokenIssuer is the JWT issuer the token server writes and the registry
// expects. It names the registry by namespace and name rather than by
// hostname, so that it stays the same when OPERATOR_DNS_ZONE changes.
func tokenIssuer(reg *v1alpha1.ImageRegistry) string {
	return "image-registry-operator/" + reg.Namespace + "/" + reg.Name
}

// convertACL copies spec.auth.acl entry by entry; the match keys are the
// same on both sides, so nothing can be lost in translation.
func convertACL(in []v1alpha1.ACLEntry) []authconfig.ACLEntry {
	out := make([]authconfig.ACLEntry, 0, len(in))
	for _, e := range in {
		m := e.Match
		var labels map[string]string
		if m.Labels != nil {
			labels = make(map[string]string, len(m.Labels))
			for k, v := range m.Labels {
				labels[k] = v
			}
		}
		var actions []string
		if e.Actions != nil {
			actions = append([]string{}, e.Actions...)
		}
		out = append(out, authconfig.ACLEntry{
			Match: authconfig.ACLMatch{
				Account: m.Account, Type: m.Type, Name: m.Name, IP: m.IP, Service: m.Service, Labels: labels,
			},
			Actions: actions,
			Comment: e.Comment,
		})
	}
	return out
}

func tokenExpiration(reg *v1alpha1.ImageRegistry) time.Duration {
	if reg.Spec.Auth.TokenExpiration != nil {
		return reg.Spec.Auth.TokenExpiration.Duration
	}
	return defaultTokenExpiration
}

// defaultACL is the ACL unless spec.auth.acl replaces it: pkg/acl's
// default, with delete for push accounts in their own namespace (so that
// they can remove what they pushed; garbage collection then frees the
// blobs). A pull-through cache instead lets every account pull any
// repository, since the upstream's repository names are not namespaced
// like ours; anonymous clients still get nothing, and nobody may push
// (the registry refuses pushes to a proxy anyway).
func defaultACL(reg *v1alpha1.ImageRegistry) []authconfig.ACLEntry {
	if reg.Spec.Proxy != nil {
		return []authconfig.ACLEntry{{
			Match:   authconfig.ACLMatch{Account: "/.+/"},
			Actions: []string{"pull"},
			Comment: "pull-through cache: every account may pull every repository",
		}}
	}
	return acl.Default()
}

// crossNamespaceACLEntries are the indexes of ACL entries that grant
// actions to accounts of any namespace: no account match and no
// ${labels:namespace} in the repository name pattern.
func crossNamespaceACLEntries(entries []v1alpha1.ACLEntry) []int {
	var out []int
	for i, e := range entries {
		if len(e.Actions) > 0 && e.Match.Account == "" && !strings.Contains(e.Match.Name, "${labels:namespace}") {
			out = append(out, i)
		}
	}
	return out
}

// renderAuthConfig renders auth_config.yml for either token server and
// checks it with the same loader the token servers use.
func renderAuthConfig(reg *v1alpha1.ImageRegistry) ([]byte, error) {
	exp := tokenExpiration(reg)
	rules := defaultACL(reg)
	if reg.Spec.Auth.ACL != nil {
		rules = convertACL(reg.Spec.Auth.ACL)
	}
	cfg := authconfig.Config{
		Server: authconfig.ServerConfig{
			Addr:        fmt.Sprintf(":%d", authPort),
			Certificate: tlsCertFile,
			Key:         tlsKeyFile,
		},
		Token: authconfig.TokenConfig{
			Issuer: tokenIssuer(reg),
			// Round up: a sub-second expiration must not become 0.
			Expiration:  int64((exp + time.Second - 1) / time.Second),
			Certificate: tokenCertFile,
			Key:         tokenKeyFile,
		},
		ExtAuth: &authconfig.ExtAuthConfig{
			Command: extAuthFile,
			// --registry: accounts of other registries in the namespace
			// are refused (spec.registries).
			Args: []string{"--namespace=" + reg.Namespace, "--registry=" + reg.Name},
		},
		ACL: rules,
	}
	data, err := cfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("render auth config: %w", err)
	}
	if _, err := authconfig.Parse(data); err != nil {
		return nil, badInput(ReasonInvalidAuthConfig, "spec.auth gives an auth configuration the token server rejects: %v", err)
	}
	return data, nil
}

// ensureAuthConfig provides the token server configuration: the user's
// ConfigMap (spec.auth.configMapName), checked but never written, or the
// rendered one.
func (c *Controller) ensureAuthConfig(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	if name := reg.Spec.Auth.ConfigMapName; name != "" {
		return c.readUserAuthConfig(reg, st, name)
	}
	data, err := renderAuthConfig(reg)
	if err != nil {
		return err
	}
	if entries := crossNamespaceACLEntries(reg.Spec.Auth.ACL); len(entries) > 0 {
		c.recorder.Eventf(reg, corev1.EventTypeWarning, EventReasonACLCrossesNamespaces,
			"spec.auth.acl entries %v grant access without ${labels:namespace} in match.name or a match.account: accounts of every namespace spec.access admits get it", entries)
	}
	desired := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: authConfigMapName(reg), Labels: objectLabels(reg)},
		Data:       map[string]string{authConfigKey: string(data)},
	}
	cur, err := lookup(c.configMapsLister.ConfigMaps(reg.Namespace).Get(desired.Name))
	if err != nil {
		return err
	}
	if _, err := ensureObject(ctx, c, reg, "ConfigMap", cur, desired, c.kubeClient.CoreV1().ConfigMaps(reg.Namespace), mergeConfigMapData); err != nil {
		return err
	}
	st.authConfig, st.authConfigMap, st.issuer = data, desired.Name, tokenIssuer(reg)
	st.tokenExpiration = tokenExpiration(reg)
	return nil
}

// readUserAuthConfig validates the user's auth ConfigMap. Its token key
// pair paths must be where the pod mounts the token Secret, or the token
// server would sign with a key the registry's JWKS does not list.
func (c *Controller) readUserAuthConfig(reg *v1alpha1.ImageRegistry, st *syncState, name string) error {
	cm, err := lookup(c.configMapsLister.ConfigMaps(reg.Namespace).Get(name))
	if err != nil {
		return err
	}
	if cm == nil {
		return badInput(ReasonAuthConfigNotFound, "auth ConfigMap %s/%s not found", reg.Namespace, name)
	}
	data, ok := cm.Data[authConfigKey]
	if !ok {
		return badInput(ReasonInvalidAuthConfig, "auth ConfigMap %s/%s has no key %s", reg.Namespace, name, authConfigKey)
	}
	// docker_auth's other authenticators (LDAP, OIDC, ...) are why a user
	// picks it: its config may hold sections the builtin server rejects.
	parse := authconfig.Parse
	if reg.Spec.Auth.Server == v1alpha1.AuthServerDockerAuth {
		parse = authconfig.ParseForDockerAuth
	}
	cfg, err := parse([]byte(data))
	if err != nil {
		return badInput(ReasonInvalidAuthConfig, "auth ConfigMap %s/%s: %v", reg.Namespace, name, err)
	}
	if cfg.Token.Certificate != tokenCertFile || cfg.Token.Key != tokenKeyFile {
		return badInput(ReasonInvalidAuthConfig, "auth ConfigMap %s/%s: token.certificate and token.key must be %s and %s, where the token signing key pair is mounted", reg.Namespace, name, tokenCertFile, tokenKeyFile)
	}
	st.authConfig, st.authConfigMap, st.issuer = []byte(data), name, cfg.Token.Issuer
	st.tokenExpiration = time.Duration(cfg.Token.Expiration) * time.Second
	return nil
}

// registryConfig is the part of the distribution registry's config.yml
// the operator sets.
type registryConfig struct {
	Version string               `json:"version"`
	Log     registryLogConfig    `json:"log"`
	Storage map[string]any       `json:"storage"`
	HTTP    registryHTTPConfig   `json:"http"`
	Auth    registryAuthConfig   `json:"auth"`
	Health  registryHealthConfig `json:"health"`
	Proxy   *registryProxyConfig `json:"proxy,omitempty"`
}

// registryProxyConfig makes the registry a pull-through cache. The
// credentials come from the environment (REGISTRY_PROXY_USERNAME and
// _PASSWORD), never from the ConfigMap.
type registryProxyConfig struct {
	RemoteURL string `json:"remoteurl"`
	TTL       string `json:"ttl,omitempty"`
}

type registryLogConfig struct {
	Level string `json:"level"`
}

type registryHTTPConfig struct {
	Addr    string              `json:"addr"`
	TLS     registryTLSConfig   `json:"tls"`
	Headers map[string][]string `json:"headers,omitempty"`
	// DrainTimeout: see replicas.go.
	DrainTimeout string `json:"draintimeout,omitempty"`
}

type registryTLSConfig struct {
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
}

type registryAuthConfig struct {
	Token registryTokenConfig `json:"token"`
}

// registryTokenConfig names a JWKS and no rootcertbundle: the registry
// trusts exactly the keys the operator lists (trust.go).
type registryTokenConfig struct {
	Realm   string `json:"realm"`
	Service string `json:"service"`
	Issuer  string `json:"issuer"`
	JWKS    string `json:"jwks"`
}

type registryHealthConfig struct {
	StorageDriver registryStorageHealth `json:"storagedriver"`
}

type registryStorageHealth struct {
	Enabled   bool   `json:"enabled"`
	Interval  string `json:"interval"`
	Threshold int    `json:"threshold"`
}

// renderRegistryConfig renders the distribution registry's config.yml. It
// holds no secret: http.secret, S3 and upstream credentials come from
// Secrets through the environment (REGISTRY_HTTP_SECRET,
// REGISTRY_STORAGE_S3_ACCESSKEY, REGISTRY_PROXY_PASSWORD, ...). readOnly
// puts the registry into maintenance mode for a garbage collection (gc.go):
// it then serves pulls and refuses every write with 405.
func renderRegistryConfig(reg *v1alpha1.ImageRegistry, hostname, issuer string, readOnly bool) ([]byte, error) {
	storage := map[string]any{"filesystem": map[string]any{"rootdirectory": dataDir}}
	if s3 := s3Storage(reg); s3 != nil {
		params := map[string]any{"region": s3.Region, "bucket": s3.Bucket}
		if s3.Endpoint != "" {
			params["regionendpoint"] = s3.Endpoint
			// S3-compatible services (MinIO, Ceph) rarely serve virtual-host buckets.
			params["forcepathstyle"] = true
		}
		if s3.RootDirectory != "" {
			params["rootdirectory"] = s3.RootDirectory
		}
		storage = map[string]any{
			"s3": params,
			// Serve blobs through the registry: clients may not reach the
			// bucket's endpoint, and the registry's TLS and auth then cover them.
			"redirect": map[string]any{"disable": true},
		}
	}
	if reg.Spec.Proxy == nil {
		// Deleting manifests through the API (who may: defaultACL); the
		// garbage collection frees their blobs.
		storage["delete"] = map[string]any{"enabled": true}
	}
	if readOnly {
		storage["maintenance"] = map[string]any{"readonly": map[string]any{"enabled": true}}
	}
	cfg := registryConfig{
		Version: "0.1",
		Log:     registryLogConfig{Level: "info"},
		Storage: storage,
		HTTP: registryHTTPConfig{
			Addr:    fmt.Sprintf(":%d", registryPort),
			TLS:     registryTLSConfig{Certificate: tlsCertFile, Key: tlsKeyFile},
			Headers: map[string][]string{"X-Content-Type-Options": {"nosniff"}},
		},
		Auth: registryAuthConfig{Token: registryTokenConfig{
			Realm:   fmt.Sprintf("https://%s:%d/auth", hostname, authPort),
			Service: hostname,
			Issuer:  issuer,
			JWKS:    jwksFile,
		}},
		Health: registryHealthConfig{StorageDriver: registryStorageHealth{Enabled: true, Interval: "10s", Threshold: 3}},
	}
	replicaSettings(&cfg)
	if p := reg.Spec.Proxy; p != nil {
		cfg.Proxy = &registryProxyConfig{RemoteURL: p.RemoteURL}
		if p.TTL != nil {
			cfg.Proxy.TTL = p.TTL.Duration.String()
		}
	}
	return yaml.Marshal(cfg)
}

func s3Storage(reg *v1alpha1.ImageRegistry) *v1alpha1.S3StorageSpec {
	if reg.Spec.Storage == nil {
		return nil
	}
	return reg.Spec.Storage.S3
}

// ensureRegistryConfig writes config.yml and the JWKS of the token keys
// the registry trusts (trust.go) into the registry ConfigMap.
func (c *Controller) ensureRegistryConfig(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	data, err := renderRegistryConfig(reg, st.hostname, st.issuer, st.readOnly)
	if err != nil {
		return fmt.Errorf("render registry config: %w", err)
	}
	cur, err := lookup(c.configMapsLister.ConfigMaps(reg.Namespace).Get(registryConfigMapName(reg)))
	if err != nil {
		return err
	}
	sts, err := lookup(c.statefulSetsLister.StatefulSets(reg.Namespace).Get(statefulSetName(reg)))
	if err != nil {
		return err
	}
	trust, err := decideTokenTrust(st, cur, sts, st.tokenExpiration+tokenLeeway)
	if err != nil {
		return badInput(ReasonInvalidTokenSecret, "token signing key: %v", err)
	}
	desired := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:        registryConfigMapName(reg),
			Labels:      objectLabels(reg),
			Annotations: map[string]string{v1alpha1.AnnotationRetiredTokenKeys: trust.retired},
		},
		Data: map[string]string{registryConfigKey: string(data), jwksKey: string(trust.jwks)},
	}
	if _, err := ensureObject(ctx, c, reg, "ConfigMap", cur, desired, c.kubeClient.CoreV1().ConfigMaps(reg.Namespace), mergeConfigMapData); err != nil {
		return err
	}
	st.registryConfig, st.trust = data, trust
	return nil
}

// mergeConfigMapData replaces the data: the controller owns every key of
// the ConfigMaps it renders.
func mergeConfigMapData(cur, desired *corev1.ConfigMap) bool {
	if equality.Semantic.DeepEqual(cur.Data, desired.Data) && len(cur.BinaryData) == 0 {
		return false
	}
	cur.Data, cur.BinaryData = desired.Data, nil
	return true
}
