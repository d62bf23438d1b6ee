//go:build !linux

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
)

// execFull runs the full authenticator as a child and exits with its
// status; docker_auth runs on Linux, where the process is replaced instead.
func execFull(args []string, input []byte) error {
	full, err := fullPath()
	if err != nil {
		return err
	}
	cmd := exec.Command(full, args...)
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		return err
	}
	os.Exit(0)
	return nil
}
