// Command pause is the real node's sandbox image (framework.PauseImage),
// built locally because registry.k8s.io cannot be reached: like the
// upstream pause, it sleeps until SIGINT or SIGTERM and reaps the children
// it inherits as a pod's PID 1. The tests also use it as an application
// image that stays Running.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
