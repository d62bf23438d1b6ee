package nodeagent

import "syscall"

func bindMount(src, dst string) error { return syscall.Mount(src, dst, "", syscall.MS_BIND, "") }
func unmount(p string)                { _ = syscall.Unmount(p, 0) }
