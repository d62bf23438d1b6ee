package nodeagent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
)

const zone = "svc.cluster.local"

// node is a temporary node root: a hosts file with someone else's lines and
// the two certs.d directories, one of them with a directory the agent did
// not make.
type node struct {
	t    *testing.T
	opts Options
}

const foreignHosts = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n# a comment\n10.1.2.3 db.example.org"

func newNode(t *testing.T) *node {
	t.Helper()
	root := t.TempDir()
	n := &node{t: t, opts: Options{
		HostsFile:          filepath.Join(root, "etc/hosts"),
		ContainerdCertsDir: filepath.Join(root, "etc/containerd/certs.d"),
		DockerCertsDir:     filepath.Join(root, "etc/docker/certs.d"),
		DNSZone:            zone,
	}}
	must(t, os.MkdirAll(filepath.Dir(n.opts.HostsFile), 0o755))
	must(t, os.WriteFile(n.opts.HostsFile, []byte(foreignHosts), 0o644))
	foreign := filepath.Join(n.opts.ContainerdCertsDir, "docker.io")
	must(t, os.MkdirAll(foreign, 0o755))
	must(t, os.WriteFile(filepath.Join(foreign, "hosts.toml"), []byte("server = \"https://registry-1.docker.io\"\n"), 0o644))
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (n *node) read(p string) string {
	n.t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		n.t.Fatal(err)
	}
	return string(b)
}

// dirs lists the entries of a certs.d directory.
func (n *node) dirs(d string) []string {
	n.t.Helper()
	des, err := os.ReadDir(d)
	if err != nil {
		n.t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	sort.Strings(out)
	return out
}

// fixture holds the fake API; agent() builds an agent whose informer caches
// are seeded from it, as in k8s.io/sample-controller, and sync() runs one
// sync directly.
type fixture struct {
	t          *testing.T
	ctx        context.Context
	kubeClient *k8sfake.Clientset
	client     *fake.Clientset
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	_, ctx := ktesting.NewTestContext(t)
	var kube, reg []runtime.Object
	for _, o := range objs {
		if _, ok := o.(*v1alpha1.ImageRegistry); ok {
			reg = append(reg, o)
		} else {
			kube = append(kube, o)
		}
	}
	return &fixture{t: t, ctx: ctx, kubeClient: k8sfake.NewClientset(kube...), client: fake.NewClientset(reg...)}
}

func (f *fixture) sync(n *node) {
	f.t.Helper()
	regF := informers.NewSharedInformerFactory(f.client, 0)
	kubeF := kubeinformers.NewSharedInformerFactory(f.kubeClient, 0)
	regInf := regF.Registry().V1alpha1().ImageRegistries()
	svcInf := kubeF.Core().V1().Services()
	c, err := New(f.ctx, regInf, svcInf, n.opts, testingclock.NewFakeClock(time.Now()))
	must(f.t, err)
	regs, err := f.client.RegistryV1alpha1().ImageRegistries("").List(f.ctx, metav1.ListOptions{})
	must(f.t, err)
	for i := range regs.Items {
		must(f.t, regInf.Informer().GetIndexer().Add(&regs.Items[i]))
	}
	svcs, err := f.kubeClient.CoreV1().Services("").List(f.ctx, metav1.ListOptions{})
	must(f.t, err)
	for i := range svcs.Items {
		must(f.t, svcInf.Informer().GetIndexer().Add(&svcs.Items[i]))
	}
	must(f.t, c.Sync(f.ctx))
	// The agent only reads.
	for _, a := range append(f.client.Actions(), f.kubeClient.Actions()...) {
		if a.GetVerb() != "list" {
			f.t.Errorf("unexpected API action %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

var testCA = makeCA()

func makeCA() string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func registry(ns, name string) *v1alpha1.ImageRegistry {
	return &v1alpha1.ImageRegistry{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name)},
		Status:     v1alpha1.ImageRegistryStatus{Hostname: name + "." + ns + "." + zone, CA: testCA},
	}
}

func service(reg *v1alpha1.ImageRegistry, clusterIP, lbIP string) *corev1.Service {
	yes := true
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: reg.Namespace, Name: reg.Name,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "registry.mgoltzsche.github.com/v1alpha1", Kind: "ImageRegistry", Name: reg.Name, UID: reg.UID, Controller: &yes}}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: clusterIP},
	}
	if lbIP != "" {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP}}
	}
	return s
}

func block(lines ...string) string {
	return BlockBegin + "\n" + strings.Join(lines, "\n") + "\n" + BlockEnd + "\n"
}

func TestSyncWritesHostsAndCerts(t *testing.T) {
	a, b := registry("team-a", "reg"), registry("team-b", "reg")
	f := newFixture(t, a, b, service(a, "10.96.0.10", ""), service(b, "10.96.0.11", "192.168.1.20"))
	n := newNode(t)
	f.sync(n)

	// The LoadBalancer address wins over the ClusterIP; foreign lines stay,
	// and the missing final newline is added before the block.
	want := foreignHosts + "\n" + block("10.96.0.10 reg.team-a.svc.cluster.local", "192.168.1.20 reg.team-b.svc.cluster.local")
	if got := n.read(n.opts.HostsFile); got != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", got, want)
	}
	for _, host := range []string{"reg.team-a.svc.cluster.local", "reg.team-b.svc.cluster.local"} {
		cd := filepath.Join(n.opts.ContainerdCertsDir, host)
		if got := n.read(filepath.Join(cd, "ca.crt")); got != testCA {
			t.Errorf("containerd ca.crt of %s differs", host)
		}
		toml := n.read(filepath.Join(cd, "hosts.toml"))
		for _, s := range []string{`server = "https://` + host + `"`, `[host."https://` + host + `"]`, `ca = "ca.crt"`} {
			if !strings.Contains(toml, s) {
				t.Errorf("hosts.toml of %s lacks %s:\n%s", host, s, toml)
			}
		}
		if got := n.read(filepath.Join(n.opts.DockerCertsDir, host, "ca.crt")); got != testCA {
			t.Errorf("docker ca.crt of %s differs", host)
		}
		if got := n.dirs(filepath.Join(n.opts.DockerCertsDir, host)); strings.Join(got, ",") != MarkerFile+",ca.crt" {
			t.Errorf("docker dir of %s holds %v", host, got)
		}
	}
	if got := n.dirs(n.opts.ContainerdCertsDir); strings.Join(got, ",") != "docker.io,reg.team-a.svc.cluster.local,reg.team-b.svc.cluster.local" {
		t.Errorf("containerd certs.d holds %v", got)
	}

	// A second sync changes nothing (not even the files' inodes).
	before, err := os.Stat(n.opts.HostsFile)
	must(t, err)
	f.sync(n)
	after, err := os.Stat(n.opts.HostsFile)
	must(t, err)
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("an unchanged state rewrote the hosts file")
	}
}

func TestSyncRemovesWhatIsGone(t *testing.T) {
	a, b := registry("team-a", "reg"), registry("team-b", "reg")
	n := newNode(t)
	newFixture(t, a, b, service(a, "10.96.0.10", ""), service(b, "10.96.0.11", "")).sync(n)

	// A fresh agent (a restart) that sees only one registry: the other's
	// line and directories go, everything else stays.
	newFixture(t, a, service(a, "10.96.0.10", "")).sync(n)
	want := foreignHosts + "\n" + block("10.96.0.10 reg.team-a.svc.cluster.local")
	if got := n.read(n.opts.HostsFile); got != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", got, want)
	}
	if got := n.dirs(n.opts.ContainerdCertsDir); strings.Join(got, ",") != "docker.io,reg.team-a.svc.cluster.local" {
		t.Errorf("containerd certs.d holds %v", got)
	}
	if got := n.dirs(n.opts.DockerCertsDir); strings.Join(got, ",") != "reg.team-a.svc.cluster.local" {
		t.Errorf("docker certs.d holds %v", got)
	}

	// No registries: the block goes entirely, the hosts file is what it was
	// plus the newline that ended its last line.
	newFixture(t).sync(n)
	if got := n.read(n.opts.HostsFile); got != foreignHosts+"\n" {
		t.Errorf("hosts file:\n%q\nwant:\n%q", got, foreignHosts+"\n")
	}
	if got := n.dirs(n.opts.ContainerdCertsDir); strings.Join(got, ",") != "docker.io" {
		t.Errorf("containerd certs.d holds %v", got)
	}
	if got := n.read(filepath.Join(n.opts.ContainerdCertsDir, "docker.io", "hosts.toml")); !strings.Contains(got, "registry-1.docker.io") {
		t.Error("the foreign docker.io directory changed")
	}
}

func TestSyncRepairsEditsAndLeftovers(t *testing.T) {
	a := registry("team-a", "reg")
	n := newNode(t)
	f := newFixture(t, a, service(a, "10.96.0.10", ""))
	f.sync(n)
	host := "reg.team-a.svc.cluster.local"

	// Hand edits inside the block and in our files, a lost end marker, a
	// line appended after the block, and a crashed write's temporary file.
	edited := foreignHosts + "\n" + BlockBegin + "\n10.0.0.99 " + host + "\n10.0.0.98 evil.example.org\n# after\n"
	must(t, os.WriteFile(n.opts.HostsFile, []byte(edited), 0o600))
	must(t, os.Chmod(n.opts.HostsFile, 0o600))
	must(t, os.WriteFile(filepath.Join(n.opts.ContainerdCertsDir, host, "ca.crt"), []byte("tampered"), 0o644))
	must(t, os.WriteFile(filepath.Join(n.opts.ContainerdCertsDir, tmpPrefix+"123"), []byte("x"), 0o644))
	f.sync(n)
	want := foreignHosts + "\n" + block("10.96.0.10 "+host) + "# after\n"
	if got := n.read(n.opts.HostsFile); got != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", got, want)
	}
	if fi, err := os.Stat(n.opts.HostsFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("hosts file mode %v, %v; want the file's own 0600 kept", fi.Mode(), err)
	}
	if got := n.read(filepath.Join(n.opts.ContainerdCertsDir, host, "ca.crt")); got != testCA {
		t.Error("a tampered ca.crt was not put back")
	}
	if got := n.dirs(n.opts.ContainerdCertsDir); strings.Join(got, ",") != "docker.io,"+host {
		t.Errorf("containerd certs.d holds %v", got)
	}
}

func TestDesiredRefusesAndOptsOut(t *testing.T) {
	ok := registry("ns", "ok")
	optOut := registry("ns", "external")
	optOut.Annotations = map[string]string{AnnotationHosts: "false"}
	outside := registry("ns", "outside")
	outside.Status.Hostname = "registry-1.docker.io"
	injected := registry("ns", "injected")
	injected.Status.Hostname = "x.ns.svc.cluster.local\n1.2.3.4 docker.io"
	badCA := registry("ns", "badca")
	badCA.Status.CA = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
	pending := registry("ns", "pending")
	pending.Status = v1alpha1.ImageRegistryStatus{}
	noSvc := registry("ns", "nosvc")
	// A Service of the right name that the registry does not control.
	foreign := registry("ns", "foreign")
	foreignSvc := service(foreign, "10.96.0.50", "")
	foreignSvc.OwnerReferences = nil

	f := newFixture(t, ok, optOut, outside, injected, badCA, pending, noSvc, foreign,
		service(ok, "10.96.0.1", ""), service(optOut, "10.96.0.2", ""), service(outside, "10.96.0.3", ""), foreignSvc)
	n := newNode(t)
	f.sync(n)
	want := foreignHosts + "\n" + block("10.96.0.1 ok.ns.svc.cluster.local")
	if got := n.read(n.opts.HostsFile); got != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", got, want)
	}
	// CAs: the opted-out registry, the one without a Service and the one
	// with a foreign Service are still trusted; the refused ones are not.
	if got := n.dirs(n.opts.DockerCertsDir); strings.Join(got, ",") != "external.ns.svc.cluster.local,foreign.ns.svc.cluster.local,nosvc.ns.svc.cluster.local,ok.ns.svc.cluster.local" {
		t.Errorf("docker certs.d holds %v", got)
	}
}

func TestRenderHosts(t *testing.T) {
	e := []Entry{{Host: "r.ns.svc.cluster.local", IP: "10.0.0.1"}, {Host: "s.ns.svc.cluster.local"}}
	for _, tc := range []struct{ name, in, want string }{
		{"empty file", "", block("10.0.0.1 r.ns.svc.cluster.local")},
		{"block in the middle stays there", "a\n" + block("9.9.9.9 old") + "b\n", "a\n" + block("10.0.0.1 r.ns.svc.cluster.local") + "b\n"},
		{"CRLF kept outside", "a\r\n", "a\r\n" + block("10.0.0.1 r.ns.svc.cluster.local")},
		{"two blocks become one", block("1.1.1.1 x") + "m\n" + block("2.2.2.2 y"), block("10.0.0.1 r.ns.svc.cluster.local") + "m\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(RenderHosts([]byte(tc.in), e)); got != tc.want {
				t.Errorf("got:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
	if got := string(RenderHosts([]byte("a\n"+block("1.1.1.1 x")), []Entry{{Host: "s", CA: nil}})); got != "a\n" {
		t.Errorf("no IPs: got %q, want the block removed", got)
	}
}

// TestWriteFileInPlaceOnMountPoint: a hosts file that is a bind mount
// cannot be renamed over; the agent rewrites it in place (needs root and
// mount; skipped otherwise).
func TestWriteFileInPlaceOnMountPoint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount")
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "hosts")
	must(t, os.WriteFile(src, []byte("127.0.0.1 localhost\n"), 0o644))
	must(t, os.WriteFile(dst, nil, 0o644))
	if err := bindMount(src, dst); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { unmount(dst) })
	must(t, writeFile(dst, []byte("127.0.0.1 localhost\n10.0.0.1 r\n"), 0o644))
	if got, _ := os.ReadFile(src); string(got) != "127.0.0.1 localhost\n10.0.0.1 r\n" {
		t.Errorf("the mounted file holds %q", got)
	}
	must(t, writeFile(dst, []byte("x\n"), 0o644))
	if got, _ := os.ReadFile(src); string(got) != "x\n" {
		t.Errorf("after shrinking, the mounted file holds %q", got)
	}
}
