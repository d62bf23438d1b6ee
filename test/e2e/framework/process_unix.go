//go:build unix && !linux

package framework

import "syscall"

// childSysProcAttr puts a component in its own process group. Other Unixes
// have no parent-death signal, so a killed test binary can leak components
// there; Stop still cleans up on every normal exit.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
