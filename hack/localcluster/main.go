// Command localcluster runs the e2e control plane (etcd, kube-apiserver,
// kube-controller-manager on 127.0.0.1) until SIGINT or SIGTERM, for poking
// at the operator by hand or from a script:
//
//	hack/build-tools.sh etcd kube-apiserver kube-controller-manager kubectl
//	go run ./hack/localcluster --kubeconfig-out=/tmp/iro.kubeconfig --ready-file=/tmp/iro.ready &
//	while [ ! -e /tmp/iro.ready ]; do sleep 1; done
//	KUBECONFIG=/tmp/iro.kubeconfig kubectl get ns
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// errComponentExited ends serve when a component dies on its own.
var errComponentExited = errors.New("a control-plane component exited unexpectedly")

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		opts          framework.Options
		kubeconfigOut string
		readyFile     string
		logToStderr   bool
	)
	flag.StringVar(&opts.BinDir, "bin-dir", "", "directory with etcd, kube-apiserver, kube-controller-manager and kubectl (default $"+framework.BinDirEnv+" or <repo>/_output/bin)")
	flag.StringVar(&opts.Dir, "dir", "", "directory for certificates, kubeconfig, etcd data and logs; kept on exit (default: a temporary directory, removed on exit)")
	flag.BoolVar(&opts.KeepDir, "keep-dir", false, "keep the temporary directory on exit")
	flag.StringVar(&kubeconfigOut, "kubeconfig-out", "", "also write the admin kubeconfig to this path (removed on exit)")
	flag.StringVar(&readyFile, "ready-file", "", "create this file once the control plane is ready (removed on exit), for scripts to wait on")
	flag.BoolVar(&logToStderr, "log-to-stderr", false, "stream component logs to stderr instead of files under the directory")
	flag.DurationVar(&opts.StartTimeout, "start-timeout", 0, "per-component start-up timeout (default 2m)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}
	if logToStderr {
		opts.Out = os.Stderr
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	start := time.Now()
	cp, err := framework.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("starting control plane: %w", err)
	}
	runErr := serve(ctx, cp, start, kubeconfigOut, readyFile)
	// A second signal now gets the default action; Pdeathsig then takes the
	// components down with us.
	stopSignals()
	fmt.Fprintln(os.Stderr, "stopping control plane")
	stopStart := time.Now()
	for _, path := range []string{readyFile, kubeconfigOut} {
		if path == "" {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			runErr = errors.Join(runErr, err)
		}
	}
	runErr = errors.Join(runErr, cp.Stop())
	fmt.Fprintf(os.Stderr, "control plane stopped in %s\n", time.Since(stopStart).Round(100*time.Millisecond))
	return runErr
}

// serve publishes the kubeconfig and the ready file, then blocks until a
// signal arrives or a component dies.
func serve(ctx context.Context, cp *framework.ControlPlane, start time.Time, kubeconfigOut, readyFile string) error {
	kubeconfig := cp.Kubeconfig
	if kubeconfigOut != "" {
		if err := copyFile(cp.Kubeconfig, kubeconfigOut); err != nil {
			return err
		}
		kubeconfig = kubeconfigOut
	}
	fmt.Printf("control plane ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Printf("api server: %s\n", cp.APIServerURL)
	fmt.Printf("directory:  %s\n", cp.Dir)
	if cp.LogDir != "" {
		fmt.Printf("logs:       %s\n", cp.LogDir)
	}
	fmt.Printf("kubeconfig: %s\n", kubeconfig)
	fmt.Printf("export KUBECONFIG=%s\n", kubeconfig)
	if readyFile != "" {
		// Written last and atomically, so that a script that sees the file
		// can use everything printed above.
		if err := writeFileAtomic(readyFile, []byte(kubeconfig+"\n")); err != nil {
			return err
		}
	}

	ticker := time.NewTicker(2 * time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if cp.Err() != nil {
				// Stop reports which component and what it said last.
				return errComponentExited
			}
		}
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	defer in.Close()
	data, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	return writeFileAtomic(dst, data)
}

// writeFileAtomic writes via a temporary file in the same directory and a
// rename, so that readers never see a partial file. The mode is 0600: the
// kubeconfig embeds the admin key.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
