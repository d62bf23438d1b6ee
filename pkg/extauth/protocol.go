package extauth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version this package speaks.
const Version = 1

var magic = [3]byte{'I', 'R', 'A'}

// Request asks whether a login is allowed. Namespace is the one the
// ext_auth process was configured for (--namespace); a server that serves
// another namespace answers Unavailable.
type Request struct {
	Namespace string
	User      string
	Password  string
}

// String shows the request without its password.
func (r Request) String() string {
	return fmt.Sprintf("{namespace %q, user %q}", r.Namespace, r.User)
}

// GoString keeps %#v from printing the password.
func (r Request) GoString() string { return "extauth.Request" + r.String() }

// Response answers a Request.
type Response struct {
	Status Status
	// Body is, for Allowed, the ext_auth standard output; for Error and
	// Unavailable, a reason; else empty.
	Body []byte
}

// ProtocolError is a malformed or foreign frame. Its message never holds
// the frame's content.
type ProtocolError struct {
	msg string
	// Version is set when the frame was well-formed but of another
	// version; the server then answers Unavailable.
	Version byte
}

func (e *ProtocolError) Error() string { return "ext_auth socket protocol: " + e.msg }

func protoErr(format string, args ...any) error {
	return &ProtocolError{msg: fmt.Sprintf(format, args...)}
}

// WriteRequest writes r as one frame, in a single write.
func WriteRequest(w io.Writer, r Request) error {
	if len(r.Namespace) > MaxNamespaceLength || len(r.User) > MaxInput || len(r.Password) > MaxInput {
		return protoErr("request field too long")
	}
	b := make([]byte, 0, 4+6+len(r.Namespace)+len(r.User)+len(r.Password))
	b = append(b, magic[:]...)
	b = append(b, Version)
	for _, f := range []string{r.Namespace, r.User, r.Password} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	_, err := w.Write(b)
	return err
}

// ReadRequest reads one request frame. A frame of another version gives a
// *ProtocolError with Version set; lengths beyond the bounds are errors
// before anything is read into memory.
func ReadRequest(r io.Reader) (Request, error) {
	if err := readHeader(r); err != nil {
		return Request{}, err
	}
	var req Request
	var err error
	if req.Namespace, err = readField(r, MaxNamespaceLength, "namespace"); err != nil {
		return Request{}, err
	}
	if req.User, err = readField(r, MaxInput, "user"); err != nil {
		return Request{}, err
	}
	if req.Password, err = readField(r, MaxInput, "password"); err != nil {
		return Request{}, err
	}
	return req, nil
}

// WriteResponse writes r as one frame, in a single write.
func WriteResponse(w io.Writer, r Response) error {
	if len(r.Body) > MaxBody {
		return protoErr("response body of %d bytes exceeds %d", len(r.Body), MaxBody)
	}
	b := make([]byte, 0, 9+len(r.Body))
	b = append(b, magic[:]...)
	b = append(b, Version, byte(r.Status))
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Body)))
	b = append(b, r.Body...)
	_, err := w.Write(b)
	return err
}

// ReadResponse reads one response frame. Anything but a version-1 frame
// with a known status is an error.
func ReadResponse(r io.Reader) (Response, error) {
	if err := readHeader(r); err != nil {
		return Response{}, err
	}
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Response{}, truncated(err)
	}
	st := Status(h[0])
	if st > Unavailable {
		return Response{}, protoErr("unknown status %d", h[0])
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxBody {
		return Response{}, protoErr("response body of %d bytes exceeds %d", n, MaxBody)
	}
	resp := Response{Status: st}
	if n > 0 {
		resp.Body = make([]byte, n)
		if _, err := io.ReadFull(r, resp.Body); err != nil {
			return Response{}, truncated(err)
		}
	}
	return resp, nil
}

func readHeader(r io.Reader) error {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return truncated(err)
	}
	if h[0] != magic[0] || h[1] != magic[1] || h[2] != magic[2] {
		return protoErr("not a frame of this protocol")
	}
	if h[3] != Version {
		return &ProtocolError{msg: fmt.Sprintf("version %d, this side speaks %d", h[3], Version), Version: h[3]}
	}
	return nil
}

func readField(r io.Reader, max int, name string) (string, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return "", truncated(err)
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n > max {
		return "", protoErr("%s of %d bytes exceeds %d", name, n, max)
	}
	if n == 0 {
		return "", nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", truncated(err)
	}
	return string(b), nil
}

// truncated turns an EOF inside a frame into an error that says so.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return protoErr("truncated frame")
	}
	return err
}
