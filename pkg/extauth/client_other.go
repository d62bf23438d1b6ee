//go:build !linux

package extauth

import (
	"io"
	"net"
	"time"
)

// dial connects to a Unix socket. docker_auth runs on Linux, where dial
// does without package net (client_linux.go).
func dial(socket string, timeout time.Duration) (io.ReadWriteCloser, error) {
	conn, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
