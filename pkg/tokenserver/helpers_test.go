package tokenserver

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"os"

	"k8s.io/klog/v2"
)

func sha256b64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func captureKlog(w io.Writer) (restore func()) {
	klog.LogToStderr(false)
	klog.SetOutput(w)
	return func() {
		klog.SetOutput(os.Stderr)
		klog.LogToStderr(true)
	}
}

func flushKlog() { klog.Flush() }
