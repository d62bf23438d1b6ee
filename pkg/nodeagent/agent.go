// Package nodeagent keeps one node able to pull from every in-cluster
// registry: it watches ImageRegistries (read-only) and their LoadBalancer
// Services and writes, on the node,
//
//   - a marked block in the node's hosts file (/etc/hosts) that maps each
//     registry's hostname (status.hostname) to its Service address: the
//     LoadBalancer ingress IP when set, else the ClusterIP;
//   - containerd's certs.d/<hostname>/ (hosts.toml naming ca.crt, and
//     ca.crt from status.ca), so the CRI trusts the registry's CA;
//   - Docker's certs.d/<hostname>/ca.crt.
//
// Every sync computes the whole desired state from the informer caches and
// converges the files to it, so the agent re-converges from scratch after a
// restart: entries of deleted registries go, and so do directories it made
// for them (each carries a marker file). It changes nothing outside its
// hosts-file block and the directories it made. Writes are atomic (a
// temporary file renamed over the old one) except where the hosts file is
// itself a mount point, which a rename cannot replace: then it is
// rewritten in place (see writeFile).
//
// A registry whose hostname resolves without the agent (external DNS) opts
// out of the hosts entry with the annotation AnnotationHosts: "false"; its
// CA is still trusted.
package nodeagent

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/worker"
	registryinformers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions/registry/v1alpha1"
	registrylisters "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
)

// AnnotationHosts set to "false" on an ImageRegistry keeps its hostname out
// of the nodes' hosts files, for registries whose hostname resolves through
// DNS already. The CA is still installed.
const AnnotationHosts = "registry.mgoltzsche.github.com/node-hosts"

// ControllerName names the agent's queue and its sync errors metric.
const ControllerName = "node-agent"

// Options say where on the node the agent writes. An empty directory turns
// that part off.
type Options struct {
	// HostsFile is the node's hosts file (e.g. /etc/hosts, or wherever the
	// DaemonSet mounts it).
	HostsFile string
	// ContainerdCertsDir is containerd's registry config_path
	// (/etc/containerd/certs.d).
	ContainerdCertsDir string
	// DockerCertsDir is Docker's /etc/docker/certs.d.
	DockerCertsDir string
	// DNSZone, when set, is the only zone whose hostnames the agent writes
	// (the operator's --dns-zone): a registry's status.hostname must end in
	// ".<zone>", so no registry can point a node at another name.
	DNSZone string
}

// Entry is one registry as the node should see it.
type Entry struct {
	Registry cache.ObjectName
	Host     string
	// IP is empty when the registry opted out of the hosts entry or its
	// Service has no address yet.
	IP string
	CA []byte
}

// Controller is the node agent.
type Controller struct {
	opts       Options
	registries registrylisters.ImageRegistryLister
	services   corelisters.ServiceLister
	synced     []cache.InformerSynced
	queue      worker.Queue
}

// nodeKey is the agent's only queue key: every event re-syncs the node.
var nodeKey = cache.NewObjectName("", "node")

// New makes the agent on the given informers. The Service informer may be
// narrowed to the operator's managed-by label.
func New(ctx context.Context, regInformer registryinformers.ImageRegistryInformer, svcInformer coreinformers.ServiceInformer, opts Options, clk clock.WithTicker) (*Controller, error) {
	c := &Controller{
		opts:       opts,
		registries: regInformer.Lister(),
		services:   svcInformer.Lister(),
		synced:     []cache.InformerSynced{regInformer.Informer().HasSynced, svcInformer.Informer().HasSynced},
		queue:      worker.NewQueue(ControllerName, clk),
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.queue.Add(nodeKey) },
		UpdateFunc: func(any, any) { c.queue.Add(nodeKey) },
		DeleteFunc: func(any) { c.queue.Add(nodeKey) },
	}
	if _, err := regInformer.Informer().AddEventHandlerWithOptions(h, cache.HandlerOptions{Logger: ptr(klog.FromContext(ctx))}); err != nil {
		return nil, err
	}
	if _, err := svcInformer.Informer().AddEventHandlerWithOptions(h, cache.HandlerOptions{Logger: ptr(klog.FromContext(ctx))}); err != nil {
		return nil, err
	}
	return c, nil
}

func ptr[T any](v T) *T { return &v }

// Run syncs the node until ctx ends. The first sync runs once the caches
// have synced, so a restarted agent converges from scratch at once.
func (c *Controller) Run(ctx context.Context) error {
	c.queue.Add(nodeKey)
	return worker.Run(ctx, ControllerName, c.queue, 1, func(ctx context.Context, _ cache.ObjectName) error {
		return c.Sync(ctx)
	}, c.synced)
}

// Sync converges the node's files to the registries in the caches.
func (c *Controller) Sync(ctx context.Context) error {
	regs, err := c.registries.List(labels.Everything())
	if err != nil {
		return err
	}
	entries := c.Desired(ctx, regs)
	return Apply(ctx, c.opts, entries)
}

// Desired turns registries into entries, sorted by hostname. Registries
// without a hostname or CA yet, or with one the agent refuses, are left out
// (and logged).
func (c *Controller) Desired(ctx context.Context, regs []*v1alpha1.ImageRegistry) []Entry {
	logger := klog.FromContext(ctx)
	sort.Slice(regs, func(i, j int) bool {
		if regs[i].Namespace != regs[j].Namespace {
			return regs[i].Namespace < regs[j].Namespace
		}
		return regs[i].Name < regs[j].Name
	})
	byHost := map[string]bool{}
	var out []Entry
	for _, reg := range regs {
		key := cache.MetaObjectToName(reg)
		host := reg.Status.Hostname
		if host == "" || reg.Status.CA == "" || reg.DeletionTimestamp != nil {
			continue
		}
		if err := c.checkHost(host); err != nil {
			logger.Info("Ignoring registry with an unacceptable hostname", "registry", key, "hostname", host, "reason", err)
			continue
		}
		if byHost[host] {
			logger.Info("Ignoring registry whose hostname another registry has", "registry", key, "hostname", host)
			continue
		}
		ca := []byte(reg.Status.CA)
		if err := checkCA(ca); err != nil {
			logger.Info("Ignoring registry with an unusable CA", "registry", key, "reason", err)
			continue
		}
		byHost[host] = true
		e := Entry{Registry: key, Host: host, CA: ca}
		if reg.Annotations[AnnotationHosts] != "false" {
			e.IP = c.serviceIP(reg)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

func (c *Controller) checkHost(host string) error {
	if errs := validation.IsDNS1123Subdomain(host); len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	if z := strings.Trim(c.opts.DNSZone, "."); z != "" && !strings.HasSuffix(host, "."+z) {
		return fmt.Errorf("not in the zone %s", z)
	}
	return nil
}

// checkCA accepts a PEM bundle of at least one certificate and nothing else.
func checkCA(b []byte) error {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block of type %q", blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return err
		}
		n++
	}
	if n == 0 || strings.TrimSpace(string(b)) != "" {
		return fmt.Errorf("not a PEM certificate bundle")
	}
	return nil
}

// serviceIP is the address of the registry's LoadBalancer Service (named
// like the registry and controlled by it): its first ingress IP, else its
// ClusterIP; "" when it has none yet.
func (c *Controller) serviceIP(reg *v1alpha1.ImageRegistry) string {
	svc, err := c.services.Services(reg.Namespace).Get(reg.Name)
	if err != nil || !metav1.IsControlledBy(svc, reg) {
		return ""
	}
	return ServiceIP(svc)
}

// ServiceIP is the address the agent maps a registry's hostname to.
func ServiceIP(svc *corev1.Service) string {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if ip := net.ParseIP(in.IP); ip != nil {
			return ip.String()
		}
	}
	if ip := net.ParseIP(svc.Spec.ClusterIP); ip != nil {
		return ip.String()
	}
	return ""
}
