package framework

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// tailBytes is how much of a component's recent output is kept in
	// memory for error messages, whatever Options.Out is.
	tailBytes = 64 << 10
	// tailLines is how many of those lines an error message shows.
	tailLines = 40
	// killWait bounds the wait for a SIGKILLed process to be reaped.
	killWait = 10 * time.Second
)

// process is one running control-plane component.
type process struct {
	name string
	cmd  *exec.Cmd
	tail *tailBuffer
	// closeLog flushes and closes the log destination once the process is
	// reaped.
	closeLog func() error

	done    chan struct{}
	waitErr error // written before done is closed

	// stopping is set before we signal the process, so that its exit is
	// not mistaken for a crash.
	stopping atomic.Bool
}

// startProcess starts binary with args and copies its stdout and stderr to
// log, which is closed by closeLog after the process is reaped.
func startProcess(name, binary string, args []string, log io.Writer, closeLog func() error) (*process, error) {
	p := &process{
		name:     name,
		tail:     &tailBuffer{},
		closeLog: closeLog,
		done:     make(chan struct{}),
	}
	cmd := exec.Command(binary, args...)
	out := &lockedWriter{w: io.MultiWriter(log, p.tail)}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = childSysProcAttr()
	// A component that forked a child holding our pipe must not hang Stop.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		_ = closeLog()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		if err := p.closeLog(); err != nil && p.waitErr == nil {
			p.waitErr = fmt.Errorf("closing log: %w", err)
		}
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited (and been reaped).
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// crashErr returns a non-nil error if the process exited without being asked
// to, with the tail of its output.
func (p *process) crashErr() error {
	if p.stopping.Load() || !p.exited() {
		return nil
	}
	return fmt.Errorf("%s exited unexpectedly (%v); last output:\n%s", p.name, p.waitErr, p.tail.Lines(tailLines))
}

// stop sends SIGTERM to the process group, waits up to grace for it to exit
// and then SIGKILLs the group. It reports whether it had to kill.
//
// Signalling the group (Setpgid puts each component in its own) also reaches
// anything the component may have spawned.
func (p *process) stop(grace time.Duration) (killed bool, err error) {
	if p.exited() {
		return false, nil
	}
	p.stopping.Store(true)
	pgid := -p.cmd.Process.Pid
	if err := syscall.Kill(pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("sending SIGTERM to %s: %w", p.name, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return false, nil
	case <-timer.C:
	}
	if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("sending SIGKILL to %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return true, nil
	case <-time.After(killWait):
		return true, fmt.Errorf("%s (pid %d) still not reaped %s after SIGKILL", p.name, p.cmd.Process.Pid, killWait)
	}
}

// logDestination returns where a component's output goes: a prefixed stream
// on out when the caller gave one, otherwise its own file under logDir.
func logDestination(name string, out io.Writer, logPath string) (io.Writer, func() error, error) {
	if out != nil {
		pw := &prefixWriter{w: out, prefix: "[" + name + "] "}
		return pw, pw.Flush, nil
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log for %s: %w", name, err)
	}
	return f, f.Close, nil
}

// lockedWriter serialises writes: exec copies stdout and stderr from two
// goroutines when they are not *os.File.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// tailBuffer keeps the last tailBytes of output.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - tailBytes; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

// Lines returns the last n lines.
func (t *tailBuffer) Lines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := bytes.TrimRight(t.buf, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

// prefixWriter prefixes every line with the component name, so that the
// interleaved output of several components on one writer stays readable.
// Writers shared by several components are guarded by outputMu.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	partial []byte
}

// outputMu guards writes of whole lines to a caller's Out, which several
// prefixWriters share.
var outputMu sync.Mutex

func (p *prefixWriter) Write(b []byte) (int, error) {
	n := len(b)
	p.partial = append(p.partial, b...)
	i := bytes.LastIndexByte(p.partial, '\n')
	if i < 0 {
		return n, nil
	}
	lines := strings.SplitAfter(string(p.partial[:i+1]), "\n")
	p.partial = append(p.partial[:0], p.partial[i+1:]...)
	var sb strings.Builder
	for _, l := range lines {
		if l != "" {
			sb.WriteString(p.prefix)
			sb.WriteString(l)
		}
	}
	outputMu.Lock()
	defer outputMu.Unlock()
	if _, err := io.WriteString(p.w, sb.String()); err != nil {
		return n, err
	}
	return n, nil
}

// Flush writes a trailing line without a newline, if any.
func (p *prefixWriter) Flush() error {
	if len(p.partial) == 0 {
		return nil
	}
	_, err := p.Write([]byte("\n"))
	return err
}
