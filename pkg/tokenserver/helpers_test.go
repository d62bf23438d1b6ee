package tokenserver

import (
	"io"
	"os"

	"k8s.io/klog/v2"
)

func captureKlog(w io.Writer) (restore func()) {
	klog.LogToStderr(false)
	klog.SetOutput(w)
	return func() {
		klog.SetOutput(os.Stderr)
		klog.LogToStderr(true)
	}
}

func flushKlog() { klog.Flush() }
