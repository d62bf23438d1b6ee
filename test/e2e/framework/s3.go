package framework

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// WeedBinary is SeaweedFS's binary (hack/build-tools.sh builds it).
const WeedBinary = "weed"

// S3Region is the region the S3 server answers for (SeaweedFS accepts any;
// the registry's S3 driver needs one).
const S3Region = "us-east-1"

// S3Options configures StartS3.
type S3Options struct {
	// BinDir holds weed. Default: DefaultBinDir.
	BinDir string
	// Dir receives the data and the log. Required; the caller removes it.
	Dir string
	// Out, if set, receives weed's output (prefixed) instead of Dir/weed.log.
	Out io.Writer
	// Timeout bounds the start. Default 90s.
	Timeout time.Duration
	// TLS, if set, makes the S3 port serve HTTPS with this key pair; the
	// Endpoint is then https://.
	TLS *S3TLS
}

// S3TLS is the S3 port's serving key pair (PEM files) and the CA bundle
// that verifies it.
type S3TLS struct {
	CertFile, KeyFile string
	CA                []byte
}

// S3Server is a real S3 server, SeaweedFS's `weed server -s3`, on 127.0.0.1
// with one identity whose keys are random per run. Telemetry is off
// (-master.telemetry=false: SeaweedFS otherwise posts to an outside host),
// and every port is chosen free or turned off; nothing listens beyond
// loopback.
type S3Server struct {
	// Endpoint is the S3 URL, http://127.0.0.1:<port>.
	Endpoint string
	// Addr is 127.0.0.1:<port> of Endpoint.
	Addr string
	// Keys are two key pairs of the one identity (Admin, Read, List,
	// Tagging, Write), both valid: a test can switch a registry from one to
	// the other.
	Keys [2]S3Keys
	// LogFile holds weed's output unless Options.Out was set.
	LogFile string

	bin        string
	masterAddr string
	// filerURL is the filer's HTTP API, which lists a bucket's directories.
	filerURL string
	// masterShell is the master for weed shell: host:port.grpcPort
	// (SeaweedFS otherwise assumes the gRPC port is port+10000).
	masterShell string
	proc        *process
}

// S3Keys are an S3 access key id and secret access key.
type S3Keys struct {
	AccessKey, SecretKey string
}

// StartS3 starts SeaweedFS with master, volume server, filer and S3 gateway
// in one process, and waits until S3 answers and a volume is writable.
func StartS3(ctx context.Context, opts S3Options) (*S3Server, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("framework: S3Options.Dir is required")
	}
	if opts.BinDir == "" {
		dir, err := DefaultBinDir()
		if err != nil {
			return nil, err
		}
		opts.BinDir = dir
	}
	if opts.Timeout == 0 {
		opts.Timeout = 90 * time.Second
	}
	bin := filepath.Join(opts.BinDir, WeedBinary)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w: %v (hack/build-tools.sh weed builds it)", ErrBinariesMissing, err)
	}
	dataDir := filepath.Join(opts.Dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	s := &S3Server{bin: bin}
	var creds []any
	for i := range s.Keys {
		s.Keys[i] = S3Keys{AccessKey: fmt.Sprintf("IRO%d%s", i, strings.ToUpper(randomHex(8))), SecretKey: randomHex(20)}
		creds = append(creds, map[string]string{"accessKey": s.Keys[i].AccessKey, "secretKey": s.Keys[i].SecretKey})
	}
	cfg, err := json.Marshal(map[string]any{"identities": []any{map[string]any{
		"name":        "registry",
		"credentials": creds,
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}})
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(opts.Dir, "s3.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		return nil, err
	}
	// master, volume, filer and S3, each with its gRPC port.
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	s.masterAddr = "127.0.0.1:" + p(0)
	s.masterShell = s.masterAddr + "." + p(1)
	s.Addr = "127.0.0.1:" + p(6)
	s.filerURL = "http://127.0.0.1:" + p(4)
	s.Endpoint = "http://" + s.Addr
	if opts.TLS != nil {
		s.Endpoint = "https://" + s.Addr
	}
	args := []string{
		"server",
		"-dir=" + dataDir,
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.telemetry=false",
		"-master.port=" + p(0), "-master.port.grpc=" + p(1),
		"-volume.port=" + p(2), "-volume.port.grpc=" + p(3),
		"-filer.port=" + p(4), "-filer.port.grpc=" + p(5),
		"-s3", "-s3.port=" + p(6), "-s3.port.grpc=" + p(7),
		"-s3.config=" + cfgFile,
		// Extra S3 protocol ports SeaweedFS opens by default.
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		// Volume slots: the master grows a collection (the default one at
		// the readiness check, each bucket on its first write) by several
		// volumes at once; too few slots leave a bucket one volume, and
		// writes fail with InternalError once it is full. Volumes are not
		// preallocated, so slots cost nothing until used.
		"-volume.max=64",
		// Its Unix sockets default to /tmp/seaweedfs-*-<port>.sock.
		"-filer.localSocket=" + filepath.Join(opts.Dir, "filer.sock"),
		"-s3.localSocket=" + filepath.Join(opts.Dir, "s3.sock"),
		// Volumes of 1 GiB: a 100 MB blob on S3 takes its multipart
		// parts and the assembled copy.
		"-master.volumeSizeLimitMB=1024",
	}
	if opts.TLS != nil {
		// With a key pair and no -s3.port.https, the S3 port speaks HTTPS.
		args = append(args, "-s3.cert.file="+opts.TLS.CertFile, "-s3.key.file="+opts.TLS.KeyFile)
	}
	s.LogFile = filepath.Join(opts.Dir, "weed.log")
	w, closeLog, err := logDestination("weed", opts.Out, s.LogFile)
	if err != nil {
		return nil, err
	}
	proc, err := startProcess("weed", bin, args, w, closeLog)
	if err != nil {
		return nil, err
	}
	s.proc = proc
	client := &http.Client{Timeout: 2 * time.Second}
	if opts.TLS != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(opts.TLS.CA) {
			return nil, fmt.Errorf("framework: S3TLS.CA holds no PEM certificate")
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	ready := func(ctx context.Context) (bool, error) {
		// S3 answers (an anonymous request is refused, which is an answer).
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		// A volume takes a write: S3 answers before the volume server has
		// registered, and a write then fails.
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.masterAddr+"/dir/assign", nil)
		resp, err = client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var a struct {
			Fid   string `json:"fid"`
			Error string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return false, err
		}
		if a.Fid == "" {
			return false, fmt.Errorf("master /dir/assign: %s", a.Error)
		}
		return true, nil
	}
	if err := waitForProcess(ctx, proc, opts.Timeout, ready); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// CreateBucket creates a bucket with weed shell (the S3 identity could
// too, but the shell needs no request signing).
func (s *S3Server) CreateBucket(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, "shell", "-master="+s.masterShell)
	cmd.Stdin = strings.NewReader("s3.bucket.create -name " + name + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("weed shell s3.bucket.create %s: %w: %s", name, err, out.String())
	}
	if strings.Contains(strings.ToLower(out.String()), "error") {
		return fmt.Errorf("weed shell s3.bucket.create %s: %s", name, out.String())
	}
	return nil
}

// List returns the names in directory dir (slash-separated, relative to
// the bucket) of bucket, as the filer's HTTP API lists them: S3 keys are
// the filer's paths under /buckets/<bucket>.
func (s *S3Server) List(ctx context.Context, bucket, dir string) ([]string, error) {
	u := s.filerURL + "/buckets/" + bucket + "/"
	if d := strings.Trim(dir, "/"); d != "" {
		u += d + "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("filer GET %s: %s: %s", u, resp.Status, b)
	}
	var listing struct {
		Entries []struct {
			FullPath string `json:"FullPath"`
		} `json:"Entries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&listing); err != nil {
		return nil, fmt.Errorf("filer GET %s: %w", u, err)
	}
	names := make([]string, 0, len(listing.Entries))
	for _, e := range listing.Entries {
		names = append(names, e.FullPath[strings.LastIndex(e.FullPath, "/")+1:])
	}
	return names, nil
}

// Stop ends weed with SIGTERM (SIGKILL after 10s).
func (s *S3Server) Stop() error {
	if s.proc == nil {
		return nil
	}
	_, err := s.proc.stop(10 * time.Second)
	return err
}

// CrashErr tells whether weed exited without being asked to.
func (s *S3Server) CrashErr() error { return s.proc.crashErr() }

// Tail returns weed's last output lines.
func (s *S3Server) Tail() string { return s.proc.tail.Lines(tailLines) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
