package framework

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// OperatorBinary is the operator's binary name in the binary directory
// (make build puts it there).
const OperatorBinary = "image-registry-operator"

// Operator is a running operator process.
type Operator struct {
	// LogFile holds everything the operator printed.
	LogFile string
	proc    *process
}

// StartOperator runs the operator binary against the control plane with the
// admin kubeconfig (unless args set another --kubeconfig) and the given
// flags. Its output goes to a log file under the control plane's Dir, named
// after name.
func (cp *ControlPlane) StartOperator(name string, args ...string) (*Operator, error) {
	return cp.StartOperatorLogging(filepath.Join(cp.Dir, "logs", name+".log"), args...)
}

// StartOperatorLogging is StartOperator with the log file chosen by the
// caller (appended to). Health and metrics endpoints are off unless args
// turn them on.
func (cp *ControlPlane) StartOperatorLogging(logFile string, args ...string) (*Operator, error) {
	bin := cp.OperatorBinary
	if bin == "" {
		bin = filepath.Join(cp.BinDir, OperatorBinary)
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w: %v (make build puts it there)", ErrBinariesMissing, err)
	}
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	full := append([]string{
		"--kubeconfig=" + cp.Kubeconfig,
		"--health-addr=", "--metrics-addr=",
	}, args...)
	p, err := startProcess(filepath.Base(logFile), bin, full, f, f.Close)
	if err != nil {
		return nil, err
	}
	return &Operator{LogFile: logFile, proc: p}, nil
}

// PID is the operator's process id, for readings from /proc.
func (o *Operator) PID() int { return o.proc.cmd.Process.Pid }

// Stop ends the operator with SIGTERM (SIGKILL after 5s).
func (o *Operator) Stop() error {
	_, err := o.proc.stop(5 * time.Second)
	return err
}

// Kill ends the operator at once with SIGKILL and no SIGTERM first, as a
// crash would.
func (o *Operator) Kill() error {
	if o.proc.exited() {
		return nil
	}
	o.proc.stopping.Store(true)
	if err := syscall.Kill(-o.proc.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-o.proc.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("operator not reaped %s after SIGKILL", killWait)
	}
}

// Exited tells whether the process has ended, and its error if so.
func (o *Operator) Exited() (bool, error) {
	if !o.proc.exited() {
		return false, nil
	}
	return true, fmt.Errorf("operator exited: %w\n%s", o.proc.waitErr, o.proc.tail.Lines(tailLines))
}

// Tail returns the last lines the operator printed.
func (o *Operator) Tail() string {
	return o.proc.tail.Lines(tailLines)
}
