package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
)

// etcdArgs returns the flags of a single-member etcd on loopback. The data
// directory is throw-away, so fsync is off: it is most of etcd's latency on a
// shared CI disk.
func etcdArgs(dir string, clientPort, peerPort int) []string {
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	return []string{
		"--name=default",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync=true",
		// At info level etcd logs every request that is a little slow,
		// which on a loaded 2-core runner drowns the interesting lines.
		"--log-level=warn",
	}
}

// waitForEtcd polls /health, which etcd serves on the client URL when no
// separate metrics listener is configured, until it reports healthy.
func waitForEtcd(ctx context.Context, p *process, clientURL string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	healthy := func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, nil // not listening yet
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err != nil || resp.StatusCode != http.StatusOK {
			return false, nil
		}
		var h struct {
			Health string `json:"health"`
		}
		if err := json.Unmarshal(body, &h); err != nil {
			return false, fmt.Errorf("decoding etcd /health %q: %w", body, err)
		}
		return h.Health == "true", nil
	}
	return waitForProcess(ctx, p, timeout, healthy)
}
