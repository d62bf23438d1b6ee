package dataplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// A shell script container runs the host's /bin/sh with the bin dir
// mounted, and its termination message file is bound before any volume.
func TestOneShotShellAndTerminationMessage(t *testing.T) {
	binDir := t.TempDir()
	pod := &corev1.Pod{}
	c := &corev1.Container{
		Name: "collector", Command: []string{"/bin/sh", "-c", "registry garbage-collect /etc/distribution/config.yml"},
		VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}
	argv, err := buildArgv(binDir, "/tmp/work", nil, pod, c, map[string]string{"tmp": "/tmp/work/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(argv, " ")
	if !strings.Contains(joined, "mount --bind '"+binDir+"' '"+binMount+"'") || !strings.HasSuffix(joined, "/bin/sh -c registry garbage-collect /etc/distribution/config.yml") {
		t.Fatalf("argv %q", argv)
	}
	ctr := &container{name: c.Name, argv: argv}
	msg := filepath.Join(t.TempDir(), "msg")
	if err := bindTerminationMessage(ctr, msg, "/dev/termination-log"); err != nil {
		t.Fatal(err)
	}
	script := ""
	for _, a := range ctr.argv {
		if strings.HasPrefix(a, "set -e\n") {
			script = a
		}
	}
	bind := strings.Index(script, "mount --bind '"+msg+"' '/dev/termination-log'")
	tmp := strings.Index(script, "'/tmp/work/tmp' '/tmp'")
	if bind < 0 || tmp < 0 || bind > tmp {
		t.Fatalf("the termination message must be bound before the volumes:\n%s", script)
	}
	if fi, err := os.Stat(msg); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("message file %v %v", fi, err)
	}
}
