//go:build e2e

package e2e

// The throughput numbers of docs/performance.md ("Replicas on S3"): push
// and pull of a 100 MB image through one registry replica on the
// filesystem driver, one on S3 (SeaweedFS) and two on S3, with crane
// through the Service, TLS and tokens as users have them. Not part of
// make test; it prints a table:
//
//	flock /tmp/iro-e2e.lock env IRO_S3_BENCH=1 go test -tags e2e -count=1 -v -run TestS3Throughput ./test/e2e/

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// benchLayerBytes is the image's one layer: random, so incompressible, and
// gzipped beforehand, so that crane measures the transfer, not its own
// compression.
const benchLayerBytes = 100_000_000

// benchRuns of each transfer; the table shows the median.
const benchRuns = 3

func writeBenchLayer(t *testing.T, dir string) (string, int64) {
	t.Helper()
	return writeRandomLayer(t, dir, "layer.tar.gz", benchLayerBytes)
}

// writeRandomLayer writes a gzip (stored) tar layer of size random bytes
// at dir/name.
func writeRandomLayer(t *testing.T, dir, name string, size int64) (string, int64) {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.NoCompression)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "random.bin", Mode: 0o644, Size: size, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return path, fi.Size()
}

type benchRow struct {
	setup              string
	push, pull         float64 // MB/s, median of single transfers
	parPush, parPull   float64 // MB/s, two clients at once, summed
	pushRuns, pullRuns []float64
	parallelMeasured   bool
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func TestS3Throughput(t *testing.T) {
	if os.Getenv("IRO_S3_BENCH") == "" {
		t.Skip("set IRO_S3_BENCH=1 to measure (a few minutes; not part of make test)")
	}
	u := newUserEnv(t)
	s3 := startS3(t, u.dir)
	ctx := context.Background()
	layer, size := writeBenchLayer(t, u.dir)
	t.Logf("layer: %s, %d bytes (incompressible, stored)", layer, size)

	var rows []benchRow
	for _, setup := range []struct {
		name     string
		registry string
		replicas int
		s3       bool
	}{
		{"filesystem, 1 replica", "fs", 1, false},
		{"S3 (SeaweedFS), 1 replica", "sone", 1, true},
		{"S3 (SeaweedFS), 2 replicas", "stwo", 2, true},
	} {
		t.Run(setup.registry, func(t *testing.T) {
			var srv *framework.S3Server
			var hostServices []string
			if setup.s3 {
				srv = s3
				hostServices = []string{s3.Addr}
				// A bucket per setup: in a shared one the second setup would
				// find the first one's blobs and skip the uploads.
				if err := s3.CreateBucket(ctx, setup.registry); err != nil {
					t.Fatal(err)
				}
				sec := s3CredentialsSecret(u.ns, setup.registry, s3.Keys[0])
				if _, err := u.cp.Client.CoreV1().Secrets(u.ns).Get(ctx, s3CredsSecret, metav1.GetOptions{}); err != nil {
					if _, err := u.cp.Client.CoreV1().Secrets(u.ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
						t.Fatal(err)
					}
				}
			}
			u.kubectlNS(t, u.ns, s3RegistryIn(setup.registry, setup.replicas, srv, setup.registry)+fmt.Sprintf(`---
apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePushSecret
metadata:
  name: %[1]s
spec:
  registryRef:
    name: %[1]s
---
apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePullSecret
metadata:
  name: %[1]s
spec:
  registryRef:
    name: %[1]s
`, setup.registry), "apply", "-f", "-")
			u.startReplicas(t, setup.registry, setup.replicas, hostServices...)
			u.waitReady(t, readyTimeout, "imageregistry/"+setup.registry, "imagepushsecret/"+setup.registry, "imagepullsecret/"+setup.registry)
			push := u.creds(t, u.ns, setup.registry+"-image-push-secret")
			pull := u.creds(t, u.ns, setup.registry+"-image-pull-secret")
			row := benchRow{setup: setup.name}
			mbps := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }

			pushOnce := func(c *dataplane.Client, ref string) (time.Duration, error) {
				start := time.Now()
				_, err := c.Run(ctx, push, "append", "-f", layer, "-t", ref)
				return time.Since(start), err
			}
			pullOnce := func(c *dataplane.Client, ref string) (time.Duration, error) {
				out, err := os.MkdirTemp(c.Dir, "pull-")
				if err != nil {
					return 0, err
				}
				defer os.RemoveAll(out)
				start := time.Now()
				_, err = c.Run(ctx, pull, "pull", "--format=oci", ref, out)
				return time.Since(start), err
			}
			var refs []string
			for i := range benchRuns {
				// A new repository each time: the registry would otherwise
				// answer "blob exists" and skip the upload.
				ref := u.image(fmt.Sprintf("bench%d:v1", i))
				d, err := pushOnce(u.crane, ref)
				if err != nil {
					t.Fatalf("push: %v", err)
				}
				row.pushRuns = append(row.pushRuns, mbps(d))
				refs = append(refs, ref)
			}
			for i := range benchRuns {
				d, err := pullOnce(u.crane, refs[i%len(refs)])
				if err != nil {
					t.Fatalf("pull: %v", err)
				}
				row.pullRuns = append(row.pullRuns, mbps(d))
			}
			row.push, row.pull = median(row.pushRuns), median(row.pullRuns)
			{
				// Two clients at once through the Service.
				row.parallelMeasured = true
				parallel := func(op func(*dataplane.Client, string) (time.Duration, error), refOf func(int) string) float64 {
					var wg sync.WaitGroup
					start := time.Now()
					errs := make([]error, 2)
					for i := range 2 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							_, errs[i] = op(u.crane, refOf(i))
						}()
					}
					wg.Wait()
					for _, err := range errs {
						if err != nil {
							t.Fatal(err)
						}
					}
					return 2 * float64(size) / 1e6 / time.Since(start).Seconds()
				}
				row.parPush = parallel(pushOnce, func(i int) string { return u.image(fmt.Sprintf("par%d:v1", i)) })
				row.parPull = parallel(pullOnce, func(i int) string { return refs[i] })
			}
			t.Logf("%s: push %v MB/s, pull %v MB/s, two clients: push %.0f, pull %.0f MB/s", row.setup, round(row.pushRuns), round(row.pullRuns), row.parPush, row.parPull)
			rows = append(rows, row)
			if err := u.dp.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	var sb strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&sb, "\nload average at the end: %s", load)
	fmt.Fprintf(&sb, "\n100 MB image (one incompressible layer), crane through the Service, TLS and tokens; median of %d, MB = 10^6 bytes\n\n", benchRuns)
	sb.WriteString("| setup | push MB/s | pull MB/s | push, 2 clients at once (sum) | pull, 2 clients at once (sum) |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		par := func(v float64) string {
			if !r.parallelMeasured {
				return "–"
			}
			return fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(&sb, "| %s | %.0f | %.0f | %s | %s |\n", r.setup, r.push, r.pull, par(r.parPush), par(r.parPull))
	}
	t.Log(sb.String())
}

func round(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x + 0.5)
	}
	return out
}
