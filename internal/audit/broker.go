package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// BrokerOptions configure a Broker. Zero values take the defaults.
type BrokerOptions struct {
	// Logger gets device failures (paths and errors, never record
	// contents). Default: discard.
	Logger *slog.Logger
	// Now gives record and checkpoint times. Default: time.Now.
	Now func() time.Time
	// CheckpointEvery is the number of records after which a device
	// writes a checkpoint. Default: 1000.
	CheckpointEvery int
	// CheckpointInterval is how often a device that wrote records since
	// its last checkpoint writes one. Default: 10s.
	CheckpointInterval time.Duration
	// WriteTimeout bounds how long a caller waits for one device (queue
	// and write). A device with its own WriteTimeout() (the socket's
	// write_timeout) uses that instead. Default: 2s.
	WriteTimeout time.Duration
}

// Broker sends every record to every enabled device, each with its own
// HMAC key, chain and signing key, and fails closed.
type Broker struct {
	log      *slog.Logger
	now      func() time.Time
	every    int
	interval time.Duration
	timeout  time.Duration

	mu     sync.RWMutex // guards sinks and closed
	sinks  map[string]*sink
	closed bool
}

// DeviceInfo describes an enabled device.
type DeviceInfo struct {
	Path string
	Type string
	// PublicKey verifies the device's checkpoints; KeyID names it.
	PublicKey ed25519.PublicKey
	KeyID     string
	// Head is the device's chain head (the last line written).
	Head     Head
	Counters *Counters
}

// NewBroker returns a broker with no devices: until one is enabled,
// logging succeeds without writing anything.
func NewBroker(opts BrokerOptions) *Broker {
	b := &Broker{
		log:      opts.Logger,
		now:      opts.Now,
		every:    opts.CheckpointEvery,
		interval: opts.CheckpointInterval,
		timeout:  opts.WriteTimeout,
		sinks:    map[string]*sink{},
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.every <= 0 {
		b.every = 1000
	}
	if b.interval <= 0 {
		b.interval = 10 * time.Second
	}
	if b.timeout <= 0 {
		b.timeout = DefaultWriteTimeout
	}
	return b
}

// Enable starts sending records to dev at path. hmacKey (at least 16
// bytes) HMACs the device's secrets; signKey signs its checkpoints. A
// device that keeps its records (Resumer) continues the chain from its
// last record. On success the broker owns dev and closes it on Disable
// or Close; on error the caller still does.
func (b *Broker) Enable(path string, dev Device, hmacKey []byte, signKey ed25519.PrivateKey) error {
	switch {
	case path == "":
		return fmt.Errorf("%w: empty audit path", ErrInvalidConfig)
	case dev == nil:
		return fmt.Errorf("%w: %q: no device", ErrInvalidConfig, path)
	case len(hmacKey) < 16:
		return fmt.Errorf("%w: %q: the HMAC key must be at least 16 bytes", ErrInvalidConfig, path)
	case len(signKey) != ed25519.PrivateKeySize:
		return fmt.Errorf("%w: %q: the signing key is not an Ed25519 private key", ErrInvalidConfig, path)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if _, ok := b.sinks[path]; ok {
		return fmt.Errorf("%w: %q", ErrPathInUse, path)
	}
	head := Head{Hash: Genesis}
	if r, ok := dev.(Resumer); ok {
		t, err := r.Tail()
		if err != nil {
			return fmt.Errorf("audit: enable %q: read the end of the log: %w", path, err)
		}
		if t.Discarded > 0 {
			b.log.Warn("audit file ended in a torn record; cut it off", "path", path, "file", t.File, "bytes", t.Discarded)
		}
		if len(t.Line) > 0 {
			rec, err := parseLine(t.Line)
			if err != nil {
				return fmt.Errorf("audit: enable %q: cannot continue the chain: the last line of %s is not an audit record (%v); move the file aside",
					path, t.File, err)
			}
			head = Head{Seq: rec.Seq, Hash: lineHash(t.Line)}
			b.log.Info("audit chain resumed", "path", path, "file", t.File, "seq", head.Seq)
		}
	}
	timeout := b.timeout
	if wt, ok := dev.(interface{ WriteTimeout() time.Duration }); ok && wt.WriteTimeout() > 0 {
		timeout = wt.WriteTimeout()
	}
	s := &sink{
		path:     path,
		dev:      dev,
		hmacKey:  bytes.Clone(hmacKey),
		signKey:  slices.Clone(signKey),
		pub:      signKey.Public().(ed25519.PublicKey),
		timeout:  timeout,
		every:    b.every,
		interval: b.interval,
		now:      b.now,
		log:      b.log.With("audit_path", path),
		counters: &Counters{},
		queue:    make(chan *op, queueSize),
		stop:     make(chan struct{}),
		exited:   make(chan struct{}),
		head:     head,
		sem:      make(chan struct{}, 1),
	}
	if d, ok := dev.(interface{ Inline() bool }); ok {
		s.inline = d.Inline()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
	b.sinks[path] = s
	return nil
}

// Disable stops the device at path: records already queued fail, a last
// checkpoint is written and the device is closed.
func (b *Broker) Disable(path string) error {
	b.mu.Lock()
	s, ok := b.sinks[path]
	delete(b.sinks, path)
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotEnabled, path)
	}
	s.close()
	return nil
}

func (s *sink) close() {
	close(s.stop)
	<-s.exited
	s.cancel()
}

// List describes the enabled devices, by path.
func (b *Broker) List() []DeviceInfo {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]DeviceInfo, 0, len(b.sinks))
	for _, p := range slices.Sorted(maps.Keys(b.sinks)) {
		s := b.sinks[p]
		out = append(out, DeviceInfo{
			Path: p, Type: s.dev.Type(), PublicKey: s.pub, KeyID: KeyID(s.pub),
			Head: s.Head(), Counters: s.counters,
		})
	}
	return out
}

// Head returns the chain head of the device at path: the seq and hash
// of the last line it wrote (seq 0 and Genesis before the first).
func (b *Broker) Head(path string) (seq uint64, hash string, ok bool) {
	b.mu.RLock()
	s, ok := b.sinks[path]
	b.mu.RUnlock()
	if !ok {
		return 0, "", false
	}
	h := s.Head()
	return h.Seq, h.Hash, true
}

// HashString HMACs v with the key of the device at path, as the device's
// records do (for sys/audit-hash/<path>).
func (b *Broker) HashString(path, v string) (string, bool) {
	b.mu.RLock()
	s, ok := b.sinks[path]
	b.mu.RUnlock()
	if !ok {
		return "", false
	}
	return HashString(s.hmacKey, v), true
}

// LogRequest writes a request entry (Type "request") to every enabled
// device. It fails, wrapping ErrFailed and each device's error, when no
// device accepted the record; the caller must then fail the request.
// With no devices enabled it does nothing and succeeds.
func (b *Broker) LogRequest(ctx context.Context, e *Entry) error {
	return b.logEntries(ctx, e, nil)
}

// LogResponse writes a response entry (Type "response"); see LogRequest.
func (b *Broker) LogResponse(ctx context.Context, e *Entry) error {
	return b.logEntries(ctx, nil, e)
}

// LogPair writes a request's request entry and its response entry as two
// consecutive records in one write to each device: for requests that
// change nothing (reads), whose request entry need not reach the log
// before the handler runs, since a failed write still fails the request
// before it returns anything. It fails as LogRequest does. When req and
// resp share one *Auth, its token and accessor are HMAC'd once.
func (b *Broker) LogPair(ctx context.Context, req, resp *Entry) error {
	return b.logEntries(ctx, req, resp)
}

// logEntries writes req (as a request entry) and resp (as a response
// entry), either of which may be nil, to every device.
func (b *Broker) logEntries(ctx context.Context, req, resp *Entry) error {
	var buf [4]*sink
	b.mu.RLock()
	closed := b.closed
	sinks := buf[:0]
	for _, s := range b.sinks {
		sinks = append(sinks, s)
	}
	b.mu.RUnlock()
	if closed {
		return fmt.Errorf("%w: %w", ErrFailed, ErrClosed)
	}
	if len(sinks) == 0 {
		return nil
	}
	var ents [2]*Entry
	var entBuf [2]Entry
	n := 0
	for i, e := range [2]*Entry{req, resp} {
		if e == nil {
			continue
		}
		entBuf[n] = *e
		entBuf[n].Type = [2]string{TypeRequest, TypeResponse}[i]
		if entBuf[n].Time.IsZero() {
			entBuf[n].Time = b.now()
		}
		ents[n] = &entBuf[n]
		n++
	}
	if n == 0 {
		return nil
	}
	start := time.Now()
	var opBuf [4]*op
	ops := opBuf[:0]
	var bufs [4]*[]byte // render buffers, returned once no write reads them
	defer func() {
		for i, b := range bufs {
			if b != nil && (i >= len(ops) || ops[i] == nil || ops[i] == inlineWritten || ops[i].finished()) {
				putBuf(b)
			}
		}
	}()
	var errs []error
	for i, s := range sinks {
		var bodyBuf [2][]byte
		buf, bodies, err := s.render(bodyBuf[:0], ents[:n])
		if i < len(bufs) {
			bufs[i] = buf
		}
		if err == nil && s.inline {
			err = s.writeInline(ctx, bodies, start.Add(s.timeout))
			if err == nil {
				ops = append(ops, inlineWritten)
				continue
			}
		} else if err == nil {
			var o *op
			if o, err = s.submit(ctx, bodies, start.Add(s.timeout)); err == nil {
				ops = append(ops, o)
				continue
			}
		} else {
			err = fmt.Errorf("audit: %s: %w", s.path, err)
		}
		ops = append(ops, nil)
		errs = append(errs, err)
	}
	ok := 0
	for i, o := range ops {
		if o == nil {
			sinks[i].counters.failed.Add(uint64(n))
			continue
		}
		if o == inlineWritten {
			ok++
			continue
		}
		if err := sinks[i].wait(ctx, o); err != nil {
			sinks[i].counters.failed.Add(uint64(n))
			errs = append(errs, err)
			continue
		}
		ok++
	}
	if ok == 0 {
		return fmt.Errorf("%w: %w", ErrFailed, errors.Join(errs...))
	}
	for _, err := range errs {
		b.log.Warn("audit device failed; the record went to the others", "type", ents[n-1].Type, "error", err)
	}
	return nil
}

// inlineWritten stands in logEntry's list for a record a caller wrote
// inline, successfully.
var inlineWritten = &op{}

// Reopen reopens every device that can (the file devices): call it on
// SIGHUP after an outside tool rotated the files.
func (b *Broker) Reopen() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(b.sinks)) {
		if r, ok := b.sinks[p].dev.(Reopener); ok {
			if err := r.Reopen(); err != nil {
				errs = append(errs, fmt.Errorf("audit: reopen %q: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close disables every device (each writes a last checkpoint) and makes
// further logging fail.
func (b *Broker) Close() error {
	b.mu.Lock()
	sinks := b.sinks
	b.sinks = map[string]*sink{}
	b.closed = true
	b.mu.Unlock()
	for _, p := range slices.Sorted(maps.Keys(sinks)) {
		sinks[p].close()
	}
	return nil
}
