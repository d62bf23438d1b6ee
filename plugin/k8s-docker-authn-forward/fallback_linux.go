package main

import (
	"fmt"
	"os"
	"syscall"
)

// execFull replaces this process by the full authenticator. Its standard
// input becomes a pipe holding input (at most extauth.MaxInput bytes, less
// than a pipe's buffer, so the write does not block).
func execFull(args []string, input []byte) error {
	full, err := fullPath()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	if _, err := w.Write(input); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// Dup3 clears close-on-exec on the copy; the pipe's own descriptors
	// keep it and close at exec.
	if err := syscall.Dup3(int(r.Fd()), 0, 0); err != nil {
		return fmt.Errorf("standard input: %w", err)
	}
	return syscall.Exec(full, append([]string{full}, args...), os.Environ())
}
