package k8stest

import "syscall"

// sysProcAttr puts a child in its own process group, so stop can signal the
// group, and asks the kernel to kill it if the test binary dies without
// calling Stop (a panic, a test timeout, SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
