package framework

import "syscall"

// childSysProcAttr puts a component in its own process group, so that
// stop() can signal it and its children together and a terminal's Ctrl-C
// reaches only our Stop logic, and asks the kernel to SIGKILL it when its
// parent dies, so that a crashed or timed-out test binary leaves nothing
// behind.
//
// Pdeathsig fires when the OS thread that forked the child exits, not the
// process. Go only ends threads whose goroutine exits while locked to them
// (runtime.LockOSThread), which nothing here does.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
