//go:build unix

package audit

import (
	"net"
	"syscall"
)

// peerClosed reports whether the peer of conn has closed its end (or
// reset it), without blocking: a peek that finds end of file or an error
// other than "would block". The socket device checks before each write,
// so records after a peer restart go to a new connection instead of into
// a TCP connection that is already dead.
func peerClosed(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		case err != nil:
			closed = true
		case n == 0:
			closed = true
		}
		return true // never wait for readability
	})
	return err != nil || closed
}
