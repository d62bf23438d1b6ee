package dataplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// dialFunc opens a connection to an address of the pod (in its network
// namespace, see podNetwork).
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// hostDial dials on the host: for containers without a pod network (tests).
func hostDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// probeClient does HTTP(S) probes as the kubelet does: no certificate
// verification, no redirects followed beyond the kubelet's, short timeout,
// through dial (the pod's network).
func probeClient(dial dialFunc) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the kubelet does not verify probe certificates either
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext:       dial,
		},
	}
}

// runProbe runs a readiness probe against the process on 127.0.0.1 of its
// pod, reached through dial (nil: the host's loopback). A container
// without a readiness probe is ready once it runs.
func runProbe(ctx context.Context, dial dialFunc, c *corev1.Container, p *corev1.Probe) error {
	if dial == nil {
		dial = hostDial
	}
	if p == nil {
		return nil
	}
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		g := p.HTTPGet
		port, err := resolvePort(c, g.Port)
		if err != nil {
			return err
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		u := fmt.Sprintf("%s://%s/%s", scheme, net.JoinHostPort(podIP, strconv.Itoa(port)), strings.TrimPrefix(g.Path, "/"))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		for _, h := range g.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		resp, err := probeClient(dial).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := resolvePort(c, p.TCPSocket.Port)
		if err != nil {
			return err
		}
		conn, err := dial(ctx, "tcp", net.JoinHostPort(podIP, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	}
	return fmt.Errorf("probe of container %s: only httpGet and tcpSocket are supported by the data-plane runner", c.Name)
}

// resolvePort resolves a numeric or named container port.
func resolvePort(c *corev1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, p.StrVal)
}
