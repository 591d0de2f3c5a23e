package kmsplugin

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// maxBatch bounds the items of one coalesced transit request (coffer's
// default limit is 1000 per request).
const maxBatch = 64

// Item states: pending until the sender delivers a result or the caller
// stops waiting, whichever comes first.
const (
	itemPending int32 = iota
	itemDelivered
	itemAbandoned
)

// batchItem is one caller's input and, once done is closed, its result.
type batchItem[T any] struct {
	ctx   context.Context // the caller's, bounded by Config.Timeout
	in    []byte          // plaintext or ciphertext; owned by the caller
	res   T
	err   error
	state atomic.Int32
	done  chan struct{}
}

// coalescer sends concurrent calls of one operation to coffer together
// (group commit). A caller that finds no request in flight sends its
// own, alone, at once; callers that arrive while one is in flight queue
// up and go out together, up to maxBatch items in one batch_input
// request, as soon as it returns. At most one request per operation is
// in flight.
type coalescer[T any] struct {
	op, path string
	timeout  time.Duration
	// send sets res or err of every item. ctx bounds the request; a
	// single item is sent without batch_input.
	send func(ctx context.Context, items []*batchItem[T])
	// discard zeroes a result no caller took.
	discard func(T)
	// observe records the size of each request sent.
	observe func(n int)

	mu    sync.Mutex
	busy  bool // a request is in flight, or about to be
	queue []*batchItem[T]
}

// do sends in through coffer, alone or with other callers' items, and
// returns this caller's result. When ctx ends first it stops waiting
// and returns an unavailable CofferError; the others are not affected.
func (c *coalescer[T]) do(ctx context.Context, in []byte) (T, error) {
	it := &batchItem[T]{ctx: ctx, in: in, done: make(chan struct{})}
	c.mu.Lock()
	if !c.busy {
		// Nothing in flight: send at once, from this goroutine.
		c.busy = true
		c.mu.Unlock()
		c.flush([]*batchItem[T]{it})
		c.next()
		return it.res, it.err
	}
	c.queue = append(c.queue, it)
	c.mu.Unlock()
	select {
	case <-it.done:
		return it.res, it.err
	case <-ctx.Done():
		if it.state.CompareAndSwap(itemPending, itemAbandoned) {
			var zero T
			return zero, gaveUp(ctx, c.op, c.path, "coffer's answer to a batched request")
		}
		<-it.done // delivered meanwhile
		return it.res, it.err
	}
}

// next hands what queued up meanwhile to a sender goroutine, or marks
// the coalescer idle.
func (c *coalescer[T]) next() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.busy = false
		return
	}
	go c.run()
}

// run sends queued items in batches until the queue is empty.
func (c *coalescer[T]) run() {
	for {
		c.mu.Lock()
		var items []*batchItem[T]
		n := 0
		for _, it := range c.queue {
			if len(items) == maxBatch {
				break
			}
			n++
			if it.state.Load() == itemPending {
				items = append(items, it)
			}
		}
		c.queue = c.queue[n:]
		if len(c.queue) == 0 {
			c.queue = nil // let the backing array go
		}
		if len(items) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.flush(items)
	}
}

// flush sends one request for items and hands each caller its result.
func (c *coalescer[T]) flush(items []*batchItem[T]) {
	if c.observe != nil {
		c.observe(len(items))
	}
	if len(items) == 1 {
		// The caller's own context: exactly the unbatched call.
		c.send(items[0].ctx, items)
	} else {
		// Bounded by Timeout from now, and given up when every caller
		// has stopped waiting, not when one has.
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		var left atomic.Int64
		left.Store(int64(len(items)))
		stops := make([]func() bool, len(items))
		for i, it := range items {
			stops[i] = context.AfterFunc(it.ctx, func() {
				if left.Add(-1) == 0 {
					cancel()
				}
			})
		}
		c.send(ctx, items)
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
	for _, it := range items {
		if it.state.CompareAndSwap(itemPending, itemDelivered) {
			close(it.done)
		} else if it.err == nil && c.discard != nil {
			c.discard(it.res) // the caller left
		}
	}
}
