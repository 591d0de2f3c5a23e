//go:build !linux

package k8stest

import "syscall"

// sysProcAttr puts a child in its own process group, so stop can signal the
// group. Without Linux's Pdeathsig a child outlives a test binary that dies
// without calling Stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
