package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// queueSize bounds the records waiting for one device. A caller that
// finds the queue full waits for room until its deadline.
const queueSize = 256

// Counters count one device's records. Written counts lines the device
// accepted (records and checkpoints); Failed counts records a caller saw
// fail on this device (including timeouts). A write that timed out for
// its caller but then completed counts in both.
type Counters struct {
	written, failed atomic.Uint64
}

// Written returns the number of lines the device accepted.
func (c *Counters) Written() uint64 { return c.written.Load() }

// Failed returns the number of records that failed on the device.
func (c *Counters) Failed() uint64 { return c.failed.Load() }

// op states.
const (
	opQueued int32 = iota
	opRunning
	opCancelled
)

// op is one record on its way to one device.
type op struct {
	bodies   [][]byte // the rendered entries, without the chain fields
	deadline time.Time
	state    atomic.Int32
	err      error // set before done is closed
	done     chan struct{}
}

// sink is one enabled device: the device, its keys, its chain and the
// goroutine that writes to it. The goroutine owns the chain and the
// device; callers only render, enqueue and wait.
type sink struct {
	path     string
	dev      Device
	hmacKey  []byte
	signKey  ed25519.PrivateKey
	pub      ed25519.PublicKey
	timeout  time.Duration
	every    int
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
	counters *Counters
	hashers  sync.Pool // of *hasher under hmacKey
	auths    authMemo  // the hashers' memo of token HMACs

	queue  chan *op
	stop   chan struct{} // closed by Disable
	exited chan struct{} // closed when run returns
	cancel context.CancelFunc

	headMu sync.Mutex // guards head
	head   Head       // the last line written

	// Owned by run.
	since int    // records since the last checkpoint
	buf   []byte // line buffer
	batch []*op  // the records of one write

	// inline: records are written by their callers (writeInline), not
	// queued. sem (capacity 1) is held by whoever writes to the device:
	// an inline caller, or run for a batch, a checkpoint or shutdown.
	// since, buf and batch are used only while holding it.
	inline bool
	sem    chan struct{}

	// pending holds inline callers' records until a holder of sem writes
	// them (writeInline); spare is its previous backing array, reused.
	pendingMu sync.Mutex
	pending   []*op
	spare     []*op
}

func (s *sink) hasher() *hasher {
	if hs, ok := s.hashers.Get().(*hasher); ok {
		return hs
	}
	return &hasher{h: hmac.New(sha256.New, s.hmacKey), auths: &s.auths}
}

// render HMACs and marshals the entries for this device into one buffer
// from the pool, and appends their bodies (slices of it) to dst. The
// caller returns the buffer with putBuf once no write can read it.
func (s *sink) render(dst [][]byte, ents []*Entry) (*[]byte, [][]byte, error) {
	hs := s.hasher()
	defer s.putHasher(hs)
	buf := getBuf()
	w := entryWriter{hs: hs}
	b := (*buf)[:0]
	first := len(dst)
	for _, e := range ents {
		at := len(b)
		var err error
		if b, err = w.appendEntry(b, e); err != nil {
			putBuf(buf)
			return nil, nil, err
		}
		dst = append(dst, b[at:])
	}
	// Point the bodies at b's final array (appends may have moved it).
	off := 0
	for i := first; i < len(dst); i++ {
		n := len(dst[i])
		dst[i] = b[off : off+n : off+n]
		off += n
	}
	*buf = b
	return buf, dst, nil
}

// Render buffers are pooled: a read's two entries are about 1.6 KB, and
// at tens of thousands of requests a second fresh ones are garbage the
// collector has to chase. Buffers that grew past maxPooledBuf are left
// to it.
const maxPooledBuf = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

func (s *sink) putHasher(hs *hasher) {
	clear(hs.scratch[:cap(hs.scratch)]) // it held values in the clear
	s.hashers.Put(hs)
}

// submit queues bodies (one write), waiting for room until the deadline.
func (s *sink) submit(ctx context.Context, bodies [][]byte, deadline time.Time) (*op, error) {
	o := &op{bodies: bodies, deadline: deadline, done: make(chan struct{})}
	select {
	case s.queue <- o:
		return o, nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case s.queue <- o:
		return o, nil
	case <-t.C:
		return nil, fmt.Errorf("audit: %s: timed out waiting for the device (queue full)", s.path)
	case <-ctx.Done():
		return nil, fmt.Errorf("audit: %s: %w", s.path, ctx.Err())
	case <-s.exited:
		return nil, fmt.Errorf("audit: %s: %w", s.path, ErrNotEnabled)
	}
}

// wait waits for o until its deadline. A record still queued then is
// withdrawn; one being written may still reach the device.
func (s *sink) wait(ctx context.Context, o *op) error {
	select {
	case <-o.done:
		return o.err
	default:
	}
	t := time.NewTimer(time.Until(o.deadline))
	defer t.Stop()
	var why error
	select {
	case <-o.done:
		return o.err
	case <-t.C:
		why = errors.New("timed out")
	case <-ctx.Done():
		why = ctx.Err()
	case <-s.exited:
		why = ErrNotEnabled
	}
	if o.state.CompareAndSwap(opQueued, opCancelled) {
		return fmt.Errorf("audit: %s: %w waiting for the device", s.path, why)
	}
	select {
	case <-o.done: // finished as we gave up
		return o.err
	default:
		return fmt.Errorf("audit: %s: %w writing to the device", s.path, why)
	}
}

// finished reports whether the writer is done with o (its result is set).
func (o *op) finished() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

func (o *op) size() int {
	n := 0
	for _, b := range o.bodies {
		n += len(b)
	}
	return n
}

// run writes queued records until stop is closed, and checkpoints every
// `every` records and, when records were written since the last one, on
// every tick of `interval`. On stop it fails what is still queued, writes
// a last checkpoint and closes the device.
func (s *sink) run(ctx context.Context) {
	defer close(s.exited)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case o := <-s.queue:
			s.sem <- struct{}{}
			s.handle(ctx, s.gather(o))
			<-s.sem
		case <-tick.C:
			select {
			case s.sem <- struct{}{}:
			case <-s.stop:
				s.sem <- struct{}{}
				s.shutdown(ctx)
				return
			}
			if s.since > 0 {
				s.checkpoint(ctx)
			}
			<-s.sem
		case <-s.stop:
			s.sem <- struct{}{} // waits out a caller writing inline
			s.shutdown(ctx)
			return
		}
	}
}

// writeInline writes bodies from the calling goroutine, for devices that
// write to a regular file, where a write is a short copy into the page
// cache and a hand-off to the writer goroutine would cost more than the
// write. It is a group commit: the caller adds its records to the pending
// list and whoever holds the device (sem) writes everything pending in
// one call. An uncontended caller writes its own records at once; callers
// that arrive while a write is under way wait, and the next of them to
// get the device writes them all together. A caller that is not written
// by its deadline withdraws its records and fails.
func (s *sink) writeInline(ctx context.Context, bodies [][]byte, deadline time.Time) error {
	select {
	case s.sem <- struct{}{}:
		s.pendingMu.Lock()
		if len(s.pending) == 0 {
			// The device is free and nobody waits: the usual case, where
			// the records go out at once without the hand-over a shared
			// write needs (no channel, no list).
			s.pendingMu.Unlock()
			err := s.writeAlone(bodies)
			<-s.sem
			return err
		}
		o := &op{bodies: bodies, deadline: deadline, done: make(chan struct{})}
		s.pending = append(s.pending, o)
		s.pendingMu.Unlock()
		s.drainPending() // writes (or fails) o with the others
		<-s.sem
		return o.err
	default:
	}
	o := &op{bodies: bodies, deadline: deadline, done: make(chan struct{})}
	s.pendingMu.Lock()
	s.pending = append(s.pending, o)
	s.pendingMu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var why error
	for why == nil {
		select {
		case <-o.done:
			return o.err
		case s.sem <- struct{}{}:
			s.drainPending()
			<-s.sem
		case <-t.C:
			why = errors.New("timed out")
		case <-ctx.Done():
			why = ctx.Err()
		case <-s.stop:
			why = ErrNotEnabled
		}
	}
	if o.state.CompareAndSwap(opQueued, opCancelled) {
		return fmt.Errorf("audit: %s: %w waiting for the device", s.path, why)
	}
	<-o.done // being written: a regular file's write returns
	return o.err
}

// drainPending writes the records pending now, in batches; the caller
// holds sem. Records that arrive meanwhile are left to their callers,
// who wait for sem (so no caller keeps writing others' records while its
// own request waits). After a stop, pending records fail. The write does
// not depend on the context of the caller that drains: the records are
// others' too (a regular file's write takes no deadline anyway).
func (s *sink) drainPending() {
	s.pendingMu.Lock()
	batch := s.pending
	s.pending = s.spare[:0]
	s.spare = nil
	s.pendingMu.Unlock()
	select {
	case <-s.stop:
		s.fail(batch, fmt.Errorf("audit: %s: %w", s.path, ErrNotEnabled))
	default:
		for rest := batch; len(rest) > 0; {
			s.handle(context.Background(), s.gatherFrom(&rest))
		}
	}
	clear(batch[:cap(batch)])
	s.spare = batch[:0]
}

// room reports whether a write that holds n ops (size bytes of bodies,
// records lines) may take one more: within the batch bounds and short of
// a due checkpoint.
func (s *sink) room(n, size, records int) bool {
	return n < maxBatch && size < maxBatchBytes && s.since+records < s.every
}

// gatherFrom takes from *list the records of one write: up to the batch
// bounds, stopping where a checkpoint is due.
func (s *sink) gatherFrom(list *[]*op) []*op {
	l := *list
	size, records, n := 0, 0, 0
	for n < len(l) && (n == 0 || s.room(n, size, records)) {
		size += l[n].size()
		records += len(l[n].bodies)
		n++
	}
	*list = l[n:]
	s.batch = append(s.batch[:0], l[:n]...)
	return s.batch
}

// fail ends the records of ops that are still queued with err.
func (s *sink) fail(ops []*op, err error) {
	for _, o := range ops {
		if o.state.CompareAndSwap(opQueued, opRunning) {
			o.err = err
			close(o.done)
		}
	}
}

// Batches: under load the writer takes every record already queued (up
// to these bounds) and hands them to the device in one write, so a busy
// server pays one write call and one wake-up per batch, not per record.
const (
	maxBatch      = 128
	maxBatchBytes = 1 << 20
)

// gather returns first and the records queued behind it, without
// waiting, stopping where a checkpoint is due.
func (s *sink) gather(first *op) []*op {
	batch := append(s.batch[:0], first)
	size, records := first.size(), len(first.bodies)
	for s.room(len(batch), size, records) {
		select {
		case o := <-s.queue:
			batch = append(batch, o)
			size += o.size()
			records += len(o.bodies)
			continue
		default:
		}
		break
	}
	s.batch = batch
	return batch
}

// handle frames the batch's records onto the chain and writes them in one
// call. The device takes all of them or none (a file device cuts a
// partial write off again), so every record shares the write's outcome.
func (s *sink) handle(ctx context.Context, batch []*op) {
	head := s.Head()
	seq := head.Seq
	var prevBuf [2 * sha256.Size]byte // the previous line's hash, hex
	prev := append(prevBuf[:0], head.Hash...)
	s.buf = s.buf[:0]
	n, lines := 0, 0
	deadline := time.Time{}
	for _, o := range batch {
		if !o.state.CompareAndSwap(opQueued, opRunning) {
			continue // withdrawn by its caller
		}
		seq, prev = s.frame(seq, prev, o.bodies)
		lines += len(o.bodies)
		if deadline.IsZero() || o.deadline.Before(deadline) {
			deadline = o.deadline
		}
		batch[n] = o
		n++
	}
	batch = batch[:n]
	if n == 0 {
		return
	}
	err := s.writeLines(ctx, deadline, s.buf, lines, Head{Seq: seq, Hash: string(prev)})
	for _, o := range batch {
		o.err = err
		close(o.done)
	}
	clear(s.batch[:cap(s.batch)])
	if err == nil {
		s.wrote(ctx, lines)
	}
}

// writeAlone frames and writes one caller's records by themselves; the
// caller holds sem and no other records are pending. After a stop they
// fail, as pending ones do.
func (s *sink) writeAlone(bodies [][]byte) error {
	select {
	case <-s.stop:
		return fmt.Errorf("audit: %s: %w", s.path, ErrNotEnabled)
	default:
	}
	head := s.Head()
	var prevBuf [2 * sha256.Size]byte
	s.buf = s.buf[:0]
	seq, prev := s.frame(head.Seq, append(prevBuf[:0], head.Hash...), bodies)
	ctx := context.Background() // a regular file's write takes no deadline
	if err := s.writeLines(ctx, time.Time{}, s.buf, len(bodies), Head{Seq: seq, Hash: string(prev)}); err != nil {
		return err
	}
	s.wrote(ctx, len(bodies))
	return nil
}

// frame appends bodies to s.buf as the chain's lines after seq, whose
// hash (hex) is prev, and returns the last line's seq and hash. prev's
// array is reused for the hashes.
func (s *sink) frame(seq uint64, prev []byte, bodies [][]byte) (uint64, []byte) {
	for _, body := range bodies {
		start := len(s.buf)
		seq++
		s.buf = appendFramed(s.buf, seq, prev, body)
		prev = appendLineHash(prev[:0], s.buf[start:len(s.buf)-1])
	}
	return seq, prev
}

// wrote counts lines just written towards the next checkpoint and writes
// it when due.
func (s *sink) wrote(ctx context.Context, lines int) {
	s.since += lines
	if s.since >= s.every {
		s.checkpoint(ctx)
	}
}

// writeLines writes n framed lines ending at head and, when the device
// took them, advances the head.
func (s *sink) writeLines(ctx context.Context, deadline time.Time, lines []byte, n int, head Head) error {
	var err error
	if s.inline {
		// A regular file's write does not block on a peer and takes no
		// deadline: spare the timer (a few microseconds per record).
		err = s.dev.Write(ctx, lines)
	} else {
		wctx, cancel := context.WithDeadline(ctx, deadline)
		err = s.dev.Write(wctx, lines)
		cancel()
	}
	if err != nil {
		return err
	}
	s.counters.written.Add(uint64(n))
	s.headMu.Lock()
	s.head = head
	s.headMu.Unlock()
	return nil
}

// write writes one line (a checkpoint) and, when the device took it,
// advances the head.
func (s *sink) write(ctx context.Context, deadline time.Time, line []byte) error {
	head := s.Head()
	return s.writeLines(ctx, deadline, line, 1, Head{Seq: head.Seq + 1, Hash: lineHash(line[:len(line)-1])})
}

// checkpoint writes a signed checkpoint over the current head. A failed
// one is logged and tried again at the next opportunity.
func (s *sink) checkpoint(ctx context.Context) {
	head := s.Head()
	now := s.now()
	line, err := appendCheckpoint(s.buf[:0], s.path, head.Seq+1, head.Hash, now, s.signKey)
	if err != nil {
		s.log.Error("audit checkpoint", "path", s.path, "error", err)
		return
	}
	s.buf = line
	if err := s.write(ctx, time.Now().Add(s.timeout), line); err != nil {
		s.log.Warn("audit checkpoint not written; will retry", "path", s.path, "seq", head.Seq+1, "error", err)
		return
	}
	s.since = 0
}

func (s *sink) shutdown(ctx context.Context) {
	gone := fmt.Errorf("audit: %s: %w", s.path, ErrNotEnabled)
	for {
		select {
		case o := <-s.queue:
			s.fail([]*op{o}, gone)
			continue
		default:
		}
		break
	}
	s.pendingMu.Lock()
	s.fail(s.pending, gone)
	s.pending = nil
	s.pendingMu.Unlock()
	if s.since > 0 {
		s.checkpoint(ctx)
	}
	if err := s.dev.Close(); err != nil {
		s.log.Warn("audit device close", "path", s.path, "error", err)
	}
}

// Head returns the device's chain head: the last line written.
func (s *sink) Head() Head {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	return s.head
}
