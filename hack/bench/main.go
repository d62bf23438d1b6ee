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
	// dockerAuthBin is cesanta/docker_auth's auth_server; empty: the
	// docker_auth rows are skipped. dockerAuthOnly measures them alone.
	dockerAuthBin  string
	dockerAuthOnly bool
	skipSweep      bool
	skipWave       bool
	replay         bool
	// rotationInterval is spec.rotationInterval of every push and pull
	// object; gracePeriod the operator's effective --grace-period.
	rotationInterval time.Duration
	gracePeriod      time.Duration
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
	flag.BoolVar(&cfg.replay, "replay", true, "After each N, with its operator stopped, replay the protocol's writes for 2N new objects from the bench itself (the ideal client) and compare.")
	flag.BoolVar(&cfg.skipToken, "skip-token", false, "Skip the token server and ext_auth measurements.")
	flag.StringVar(&cfg.dockerAuthBin, "docker-auth-bin", os.Getenv("IRO_DOCKER_AUTH_BIN"), "cesanta/docker_auth's auth_server binary, for the docker_auth token rows (run with our ext_auth, with and without its sidecar). Default: $IRO_DOCKER_AUTH_BIN; empty: skip those rows.")
	flag.BoolVar(&cfg.dockerAuthOnly, "docker-auth-only", false, "Measure only the docker_auth token rows, over accounts the bench makes (no operator, no scale runs).")
	flag.BoolVar(&cfg.skipSweep, "skip-sweep", false, "Skip the rotation sweeps (the manual one and the scheduled wave that follows it).")
	flag.BoolVar(&cfg.skipWave, "skip-wave", false, "Skip only the scheduled rotation wave (it waits about --rotation-interval after the manual sweep of each N).")
	// The scheduled wave follows the manual sweep one interval later. Two
	// kinds of timers must not fire before the manual sweep is done, for N
	// up to 3000 (time to Ready there about 90 s, the sweep 70 s; on the
	// loaded machine of docs/performance.md 124 s and 117 s):
	//   - grace-period ends: the sweep leaves a previous password on every
	//     object, dropped (2 more writes) one grace period after its
	//     rotation. Shorter than the sweep, these drops would land inside
	//     the sweep's window (at N=3000 with 20 s: ~70% of the objects,
	//     +45% writes) and the sweep would no longer be "all 2N due at
	//     once". 2m > 117 s.
	//   - scheduled rotations: an object is first due at its creation +
	//     interval (+ jitter >= 0); the sweep reaches the last objects about
	//     time to Ready + 10 s + the sweep's duration after the creations
	//     began: 170 s (251 s loaded). And before the wave is due (first
	//     swept rotation + interval) the sweep's grace-period ends must be
	//     over: sweep spread + grace = 190 s (237 s loaded).
	// 5m covers both with a minute of margin and stays well above the grace
	// period, which a scheduled rotation waits for. The wave's row reports
	// any scheduled rotation that fired before it (then raise both). The
	// jitter spreads the wave by up to a tenth of the interval (30 s at 5m;
	// 6 min at the production default of 24h, so the bench's wave is
	// denser than a production one).
	//
	// Left at their defaults these two apply only when the wave runs; with
	// --skip-wave or --skip-sweep the objects keep the operator's default
	// interval (24h) and grace period (5m), as before the wave existed.
	flag.DurationVar(&cfg.rotationInterval, "rotation-interval", 5*time.Minute, "spec.rotationInterval of every push and pull object (at least 10s; must exceed time to Ready + the manual sweep, see the wave row).")
	flag.DurationVar(&cfg.gracePeriod, "grace-period", 2*time.Minute, "Passed to the operator as --grace-period (a --grace-period in --operator-args wins). Must be longer than the manual sweep and well below --rotation-interval.")
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
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	wave := !cfg.skipSweep && !cfg.skipWave
	if !wave && !set["rotation-interval"] {
		cfg.rotationInterval = 0 // the operator's default
	}
	if cfg.rotationInterval != 0 && cfg.rotationInterval < 10*time.Second {
		fmt.Fprintln(os.Stderr, "--rotation-interval: at least 10s (the CRD's rule)")
		os.Exit(2)
	}
	// The bench's --grace-period goes first so that one in --operator-args,
	// later on the command line, wins; cfg.gracePeriod is the effective one.
	if v, ok := flagFromArgs(cfg.operatorArgs, "grace-period"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "--operator-args: bad --grace-period %q\n", v)
			os.Exit(2)
		}
		cfg.gracePeriod = d
	} else if wave || set["grace-period"] {
		cfg.operatorArgs = append([]string{"--grace-period=" + cfg.gracePeriod.String()}, cfg.operatorArgs...)
	}
	if wave && cfg.gracePeriod >= cfg.rotationInterval/2 {
		fmt.Fprintf(os.Stderr, "grace period %s must be well below --rotation-interval %s: a scheduled rotation waits for the previous password's grace period to end\n", cfg.gracePeriod, cfg.rotationInterval)
		os.Exit(2)
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
	if v, ok := flagFromArgs(args, "bcrypt-cost"); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// flagFromArgs is the value of the last --name=value (or -name=value) in
// the operator's extra flags: the one the operator's flag package keeps.
func flagFromArgs(args []string, name string) (value string, found bool) {
	for _, a := range args {
		for _, prefix := range []string{"--", "-"} {
			if v, ok := strings.CutPrefix(a, prefix+name+"="); ok {
				value, found = v, true
				break
			}
		}
	}
	return value, found
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
