package extauth

import (
	"bufio"
	"fmt"
	"time"
)

// Ask sends req to the server at socket over a new connection and reads its
// answer. timeout bounds the connect, the write and each read. An error
// means the server gave no usable answer (no socket, nobody listening, a
// foreign or truncated frame, the timeout); the caller then answers on its
// own, as it does for an Unavailable response.
func Ask(socket string, req Request, timeout time.Duration) (Response, error) {
	conn, err := dial(socket, timeout)
	if err != nil {
		return Response{}, err
	}
	defer conn.Close()
	if err := WriteRequest(conn, req); err != nil {
		return Response{}, fmt.Errorf("send request: %w", err)
	}
	resp, err := ReadResponse(bufio.NewReaderSize(conn, 512))
	if err != nil {
		return Response{}, fmt.Errorf("read response: %w", err)
	}
	return resp, nil
}
