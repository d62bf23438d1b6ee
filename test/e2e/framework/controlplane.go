package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	defaultStartTimeout = 2 * time.Minute
	defaultStopTimeout  = 5 * time.Second
)

// Options configures Start. The zero value is usable.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and
	// kubectl. Default: $IRO_BIN_DIR, else <repo root>/_output/bin.
	BinDir string
	// Dir is where certificates, the kubeconfig, etcd's data and the logs
	// go. It is created if needed and, since the caller chose it, never
	// removed. Default: a new temporary directory, removed by Stop unless
	// KeepDir is set.
	Dir string
	// KeepDir keeps the temporary directory after Stop, for post-mortems.
	KeepDir bool
	// Out receives the components' output, each line prefixed with the
	// component name. Default: one file per component under Dir/logs.
	Out io.Writer
	// Controllers overrides DefaultControllers (kcm's --controllers).
	Controllers []string
	// StartTimeout bounds the wait for each component to become ready.
	// Default: 2 minutes, which a loaded 2-core runner needs at worst.
	StartTimeout time.Duration
	// StopTimeout is how long each component gets between SIGTERM and
	// SIGKILL. Default: 5 seconds.
	StopTimeout time.Duration
	// ExtraAPIServerArgs and ExtraControllerManagerArgs are appended to the
	// generated flags; a later flag wins over an earlier one.
	ExtraAPIServerArgs         []string
	ExtraControllerManagerArgs []string
	// ServiceAccountAdmission keeps the API server's ServiceAccount
	// admission plugin, which is off by default (apiserver.go says why).
	ServiceAccountAdmission bool
}

// ControlPlane is a running etcd, kube-apiserver and kube-controller-manager.
type ControlPlane struct {
	// Dir holds the control plane's files (see Options.Dir).
	Dir string
	// Kubeconfig is the path of an admin kubeconfig (group system:masters)
	// with its credentials embedded.
	Kubeconfig string
	// RestConfig is the admin rest.Config, loaded from Kubeconfig.
	RestConfig *rest.Config
	// Client is a clientset built from RestConfig.
	Client kubernetes.Interface
	// BinDir is where the binaries were taken from.
	BinDir string
	// OperatorBinary overrides <BinDir>/image-registry-operator for
	// StartOperator, e.g. to measure an older build.
	OperatorBinary string
	// LogDir holds one log per component, unless Options.Out was given.
	LogDir string
	// EtcdURL and APIServerURL are the components' client endpoints.
	EtcdURL      string
	APIServerURL string

	opts      Options
	removeDir bool

	etcd              *process
	apiServer         *process
	controllerManager *process

	stopOnce sync.Once
	stopErr  error
}

// Start starts etcd, kube-apiserver and kube-controller-manager, in that
// order, each on free loopback ports, and returns once all three are ready.
// On error everything already started is stopped again. ctx bounds only the
// start-up; the components run until Stop.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = defaultStopTimeout
	}
	if len(opts.Controllers) == 0 {
		opts.Controllers = DefaultControllers
	}

	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = DefaultBinDir(); err != nil {
			return nil, err
		}
	}
	binDir, err := filepath.Abs(binDir)
	if err != nil {
		return nil, fmt.Errorf("resolving binary directory: %w", err)
	}
	if err := checkBinaries(binDir, EtcdBinary, APIServerBinary, ControllerManagerBinary, KubectlBinary); err != nil {
		return nil, err
	}

	cp := &ControlPlane{BinDir: binDir, opts: opts}
	if opts.Dir == "" {
		if cp.Dir, err = os.MkdirTemp("", "iro-e2e-"); err != nil {
			return nil, fmt.Errorf("creating control-plane directory: %w", err)
		}
		cp.removeDir = !opts.KeepDir
	} else {
		if cp.Dir, err = filepath.Abs(opts.Dir); err != nil {
			return nil, fmt.Errorf("resolving control-plane directory: %w", err)
		}
		if err := os.MkdirAll(cp.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating control-plane directory: %w", err)
		}
	}

	if err := cp.start(ctx); err != nil {
		// The error already says which component failed and why; a crashed
		// component is not worth a second report from the cleanup.
		if stopErr := cp.stop(false); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up after failed start: %w", stopErr))
		}
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) start(ctx context.Context) error {
	cp.LogDir = filepath.Join(cp.Dir, "logs")
	if err := os.MkdirAll(cp.LogDir, 0o755); err != nil {
		return fmt.Errorf("creating log directory: %w", err)
	}
	certs, err := generatePKI(filepath.Join(cp.Dir, "pki"))
	if err != nil {
		return fmt.Errorf("generating certificates: %w", err)
	}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	etcdClientPort, etcdPeerPort, apiServerPort, kcmPort := ports[0], ports[1], ports[2], ports[3]

	cp.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdClientPort)
	if cp.etcd, err = cp.startComponent(EtcdBinary, etcdArgs(cp.Dir, etcdClientPort, etcdPeerPort)); err != nil {
		return err
	}
	if err := waitForEtcd(ctx, cp.etcd, cp.EtcdURL, cp.opts.StartTimeout); err != nil {
		return err
	}

	cp.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(apiServerPort)
	cp.Kubeconfig = filepath.Join(cp.Dir, "kubeconfig")
	if cp.RestConfig, err = writeKubeconfig(cp.Kubeconfig, cp.APIServerURL, certs); err != nil {
		return err
	}
	if cp.Client, err = kubernetes.NewForConfig(cp.RestConfig); err != nil {
		return fmt.Errorf("creating clientset: %w", err)
	}
	args := apiServerArgs(cp.Dir, certs, cp.EtcdURL, apiServerPort)
	if cp.opts.ServiceAccountAdmission {
		args = slices.DeleteFunc(args, func(a string) bool { return a == disableServiceAccountAdmission })
	}
	args = append(args, cp.opts.ExtraAPIServerArgs...)
	if cp.apiServer, err = cp.startComponent(APIServerBinary, args); err != nil {
		return err
	}
	if err := waitForAPIServer(ctx, cp.apiServer, cp.Client, cp.opts.StartTimeout); err != nil {
		return err
	}

	args = append(controllerManagerArgs(cp.Dir, certs, cp.Kubeconfig, kcmPort, cp.opts.Controllers), cp.opts.ExtraControllerManagerArgs...)
	if cp.controllerManager, err = cp.startComponent(ControllerManagerBinary, args); err != nil {
		return err
	}
	healthURL := "https://127.0.0.1:" + strconv.Itoa(kcmPort) + "/healthz"
	return waitForControllerManager(ctx, cp.controllerManager, certs.CACertPEM, healthURL, cp.opts.StartTimeout)
}

func (cp *ControlPlane) startComponent(name string, args []string) (*process, error) {
	log, closeLog, err := logDestination(name, cp.opts.Out, filepath.Join(cp.LogDir, name+".log"))
	if err != nil {
		return nil, err
	}
	return startProcess(name, filepath.Join(cp.BinDir, name), args, log, closeLog)
}

// Stop stops kube-controller-manager, kube-apiserver and etcd, in that order:
// a kube-apiserver whose etcd is already gone keeps retrying and ignores
// SIGTERM for a long time. Each gets Options.StopTimeout after SIGTERM before
// it is killed. The temporary directory is then removed unless KeepDir.
//
// Stop returns an error if a component had crashed before it was stopped, so
// that a test cannot pass on a control plane that died under it. It is safe to
// call more than once.
func (cp *ControlPlane) Stop() error {
	return cp.stop(true)
}

func (cp *ControlPlane) stop(reportCrashes bool) error {
	cp.stopOnce.Do(func() {
		var errs []error
		for _, p := range []*process{cp.controllerManager, cp.apiServer, cp.etcd} {
			if p == nil {
				continue
			}
			if err := p.crashErr(); err != nil {
				if reportCrashes {
					errs = append(errs, err)
				}
				continue
			}
			killed, err := p.stop(cp.opts.StopTimeout)
			if err != nil {
				errs = append(errs, err)
			}
			if killed && cp.opts.Out != nil {
				outputMu.Lock()
				fmt.Fprintf(cp.opts.Out, "%s did not exit within %s of SIGTERM; killed it\n", p.name, cp.opts.StopTimeout)
				outputMu.Unlock()
			}
		}
		if cp.removeDir {
			if err := os.RemoveAll(cp.Dir); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", cp.Dir, err))
			}
		}
		cp.stopErr = errors.Join(errs...)
	})
	return cp.stopErr
}

// Err returns a non-nil error if a component has exited on its own, for
// long-running callers such as hack/localcluster that want to notice.
func (cp *ControlPlane) Err() error {
	var errs []error
	for _, p := range []*process{cp.etcd, cp.apiServer, cp.controllerManager} {
		if p != nil {
			errs = append(errs, p.crashErr())
		}
	}
	return errors.Join(errs...)
}
