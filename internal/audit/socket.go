package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Reconnect backoff of the socket device: after a failed dial or a timed
// out write it waits this long before dialling again, doubling up to the
// maximum; writes in between fail at once instead of stalling callers.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// socketDevice writes records to a TCP or unix stream socket, one JSON
// line per record, reconnecting with backoff when the peer goes away.
type socketDevice struct {
	name, network, address string
	timeout                time.Duration
	minBackoff, maxBackoff time.Duration
	now                    func() time.Time

	mu       sync.Mutex // guards conn, closed, backoff, nextDial
	conn     net.Conn
	closed   bool
	backoff  time.Duration // the next wait after a failure
	nextDial time.Time     // no dial before this
}

var _ Device = (*socketDevice)(nil)

func newSocket(name, network, address string, timeout time.Duration) *socketDevice {
	return &socketDevice{
		name: name, network: network, address: address, timeout: timeout,
		minBackoff: minBackoff, maxBackoff: maxBackoff, now: time.Now,
	}
}

func checkTCPAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port")
	}
	if host == "" {
		return errors.New("no host")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

func (d *socketDevice) Name() string { return d.name }
func (d *socketDevice) Type() string { return TypeSocket }

// WriteTimeout is the device's write_timeout; the broker waits no longer
// for one of its writes.
func (d *socketDevice) WriteTimeout() time.Duration { return d.timeout }

// Write sends p, connecting first if need be. The write has a deadline
// (write_timeout, or ctx's deadline if sooner); any error drops the
// connection, so a line cut short is never continued, and a timeout or
// failed dial starts the backoff.
func (d *socketDevice) Write(ctx context.Context, p []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	now := d.now()
	deadline := now.Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if d.conn != nil && peerClosed(d.conn) {
		d.dropLocked()
	}
	if d.conn == nil {
		if now.Before(d.nextDial) {
			return fmt.Errorf("audit: %s: %s %s: not connected; reconnecting in %v",
				d.name, d.network, d.address, d.nextDial.Sub(now).Round(time.Millisecond))
		}
		dctx, cancel := context.WithDeadline(ctx, deadline)
		var dialer net.Dialer
		conn, err := dialer.DialContext(dctx, d.network, d.address)
		cancel()
		if err != nil {
			d.failLocked(now)
			return fmt.Errorf("audit: %s: connect: %w", d.name, err)
		}
		d.conn = conn
	}
	if err := d.conn.SetWriteDeadline(deadline); err != nil {
		d.dropLocked()
		return fmt.Errorf("audit: %s: %w", d.name, err)
	}
	if _, err := d.conn.Write(p); err != nil {
		d.dropLocked()
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			d.failLocked(now)
		}
		return fmt.Errorf("audit: %s: write to %s %s: %w", d.name, d.network, d.address, err)
	}
	d.backoff = 0
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// failLocked starts or lengthens the backoff.
func (d *socketDevice) failLocked(now time.Time) {
	d.backoff = min(max(2*d.backoff, d.minBackoff), d.maxBackoff)
	d.nextDial = now.Add(d.backoff)
}

func (d *socketDevice) dropLocked() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

func (d *socketDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.dropLocked()
	return nil
}
