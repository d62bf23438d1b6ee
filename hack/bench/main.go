// Command bench measures the operator at scale against a real local control
// plane (etcd, kube-apiserver, kube-controller-manager from _output/bin) and
// compares what it costs with the physical floor: bcrypt CPU plus API-server
// writes. It also measures token issuance (pkg/tokenserver in-process over
// accounts from the API server) and the ext_auth binary's per-login latency.
//
// Run it with `make bench` (or `make bench BENCH_ARGS=--n=100,1000`). It
// prints one table and writes _output/bench/results.md, results.csv and
// time-to-ready.svg. Every loop is bounded by a timeout; all traffic stays
// on the loopback interface.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/controller/imagesecret"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

type config struct {
	ns           []int
	binDir       string
	operatorBin  string
	outDir       string
	label        string
	operatorArgs []string
	bcryptCost   int
	readyTimeout time.Duration
	unrelated    int
	skipToken    bool
	skipSweep    bool
}

func main() {
	var (
		cfg      config
		nList    string
		opArgs   string
		logLevel int
	)
	flag.StringVar(&nList, "n", "100,1000,3000", "Comma-separated numbers N: each run creates N ImagePushSecrets and N ImagePullSecrets.")
	flag.StringVar(&cfg.binDir, "bin-dir", "", "Directory with etcd, kube-apiserver, kube-controller-manager, kubectl, the operator and k8s-docker-authn. Default: $IRO_BIN_DIR or _output/bin.")
	flag.StringVar(&cfg.operatorBin, "operator-bin", "", "Operator binary. Default: <bin-dir>/image-registry-operator.")
	flag.StringVar(&cfg.outDir, "out", "", "Output directory. Default: <repo>/_output/bench.")
	flag.StringVar(&cfg.label, "label", "", "Name of this run in the output files (e.g. before, after). Default: none.")
	flag.StringVar(&opArgs, "operator-args", "", "Extra operator flags, space-separated (e.g. \"--workers=4 --kube-api-qps=50\").")
	flag.IntVar(&cfg.bcryptCost, "bcrypt-cost", 0, "bcrypt cost passed to the operator and used for the floor. 0: the operator's default.")
	flag.DurationVar(&cfg.readyTimeout, "ready-timeout", 15*time.Minute, "Give up waiting for Ready (or a rotation sweep) after this long.")
	flag.IntVar(&cfg.unrelated, "unrelated-secrets", 5000, "Unrelated Secrets created in another namespace to check that they cost the operator nothing. 0: skip.")
	flag.BoolVar(&cfg.skipToken, "skip-token", false, "Skip the token server and ext_auth measurements.")
	flag.BoolVar(&cfg.skipSweep, "skip-sweep", false, "Skip the rotation sweeps.")
	flag.IntVar(&logLevel, "v", 0, "Verbosity of the bench's own klog output.")
	flag.Parse()

	for _, s := range strings.Split(nList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "--n: bad value %q\n", s)
			os.Exit(2)
		}
		cfg.ns = append(cfg.ns, n)
	}
	if opArgs != "" {
		cfg.operatorArgs = strings.Fields(opArgs)
	}
	if cfg.bcryptCost == 0 {
		cfg.bcryptCost = costFromArgs(cfg.operatorArgs, imagesecret.DefaultBcryptCost)
	} else {
		cfg.operatorArgs = append(cfg.operatorArgs, fmt.Sprintf("--bcrypt-cost=%d", cfg.bcryptCost))
	}
	// The bench's informers and clients log little; keep client-go quiet.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", strconv.Itoa(logLevel))

	root, err := framework.RepoRoot()
	if err != nil {
		fatal(err)
	}
	if cfg.binDir == "" {
		if cfg.binDir, err = framework.DefaultBinDir(); err != nil {
			fatal(err)
		}
	}
	if cfg.operatorBin == "" {
		cfg.operatorBin = filepath.Join(cfg.binDir, framework.OperatorBinary)
	}
	if cfg.outDir == "" {
		cfg.outDir = filepath.Join(root, "_output", "bench")
	}
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		fatal(err)
	}

	// The whole run is bounded: control plane, every N, sweeps, token bench.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg, root)
	if res != nil {
		if werr := res.write(cfg); werr != nil {
			fmt.Fprintln(os.Stderr, "writing results:", werr)
		}
	}
	if err != nil {
		fatal(err)
	}
}

// costFromArgs finds --bcrypt-cost in the operator's extra flags.
func costFromArgs(args []string, def int) int {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--bcrypt-cost="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return def
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cores() int { return runtime.NumCPU() }
