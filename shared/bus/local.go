package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"spine/shared/functions"
	"spine/shared/outbox"
)

// LocalConfig tunes the in-process transport. Zero fields take the documented defaults.
type LocalConfig struct {
	// MaxDeliveryCount is how often a message is delivered before it is dead-lettered, as on a
	// Service Bus subscription. Default 10.
	MaxDeliveryCount int
	// RedeliveryDelay is the wait before redelivery, multiplied by the delivery count. Default 50ms.
	RedeliveryDelay time.Duration
	// Partitions is the number of ordered lanes per subscription; messages with the same key
	// (aggregate) share a lane, so they are delivered in order. Default 32: lanes bound how many
	// deliveries run at once, as a subscription's MaxConcurrentCalls does.
	Partitions int
	// QueueCapacity bounds each lane; a full lane refuses Publish (the outbox backs off). Default
	// 10000. It is a bound, not an allocation: a lane holds only what is queued in it (see queue).
	QueueCapacity int
	// Encoding is how message bodies are encoded in the invocation, as the host would.
	// Default EncodingDoubleQuoted (what the host sends for a string body holding JSON).
	Encoding functions.Encoding
	// DeadLetterCapacity bounds the dead-letter list kept for inspection. Default 1000.
	DeadLetterCapacity int
	// MaxBatch bounds the messages of one invocation of a function that takes batches
	// (functions.CardinalityMany), as host.json's serviceBus maxMessageBatchSize does. Default 64.
	MaxBatch int
}

func (c LocalConfig) withDefaults() LocalConfig {
	if c.MaxDeliveryCount == 0 {
		c.MaxDeliveryCount = 10
	}
	if c.RedeliveryDelay == 0 {
		c.RedeliveryDelay = 50 * time.Millisecond
	}
	if c.Partitions == 0 {
		c.Partitions = 32
	}
	if c.QueueCapacity == 0 {
		c.QueueCapacity = 10000
	}
	if c.Encoding == 0 {
		c.Encoding = functions.EncodingDoubleQuoted
	}
	if c.DeadLetterCapacity == 0 {
		c.DeadLetterCapacity = 1000
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 64
	}
	return c
}

// DeadLetter is a message that failed MaxDeliveryCount deliveries.
type DeadLetter struct {
	Function      string    `json:"function"`
	MessageID     string    `json:"messageId"`
	Subject       string    `json:"subject"`
	DeliveryCount int       `json:"deliveryCount"`
	LastStatus    int       `json:"lastStatus"`
	DeadLetterAt  time.Time `json:"deadLetteredAt"`
	Body          string    `json:"body"`
}

type envelope struct {
	msg      outbox.Message
	enqueued time.Time
}

type lane struct {
	fn     string
	types  []string
	many   bool // the function takes batches (functions.CardinalityMany)
	queues []*queue
}

// queue is one ordered lane of a subscription: a FIFO bounded at limit messages whose storage
// grows with what is queued and is let go when the lane empties. A preallocated channel of the
// same bound cost 32 lanes × 10,000 × ~136 bytes ≈ 44 MB per subscription held live from the
// start, which also lifted the GC's heap goal so that garbage piled up to twice that.
type queue struct {
	mu    sync.Mutex
	items []envelope // items[head:] are queued, oldest first
	head  int
	limit int
	ready chan struct{} // holds a token while the queue may be non-empty (wakes its one worker)
}

// queueKeep is the capacity an emptied queue keeps for the next messages; above it the storage of
// a burst is released.
const queueKeep = 64

func newQueue(limit int) *queue {
	return &queue{limit: limit, ready: make(chan struct{}, 1)}
}

// push appends env unless the queue holds limit messages already.
func (q *queue) push(env envelope) bool {
	q.mu.Lock()
	n := len(q.items) - q.head
	if n >= q.limit {
		q.mu.Unlock()
		return false
	}
	if len(q.items) == cap(q.items) && q.head > 0 && q.head >= n {
		// Reuse the consumed front instead of growing: move the queued tail down.
		copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, env)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop removes and returns the oldest message; ok is false when the queue is empty.
func (q *queue) pop() (env envelope, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return envelope{}, false
	}
	env = q.items[q.head]
	q.items[q.head] = envelope{} // drop the references for the GC
	q.head++
	if q.head == len(q.items) {
		q.head = 0
		if cap(q.items) > queueKeep {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
	}
	return env, true
}

// Local is the in-process stand-in for Service Bus, for local runs and tests: Publish accepts
// messages into per-subscription lanes (the subscriptions are the registry's Service Bus
// functions, filtered by their EventTypes), and workers deliver each message to its function
// through the same invocation path and payload encoding the Functions host uses (POST /<Name>
// with {"Data","Metadata"}; a function that takes batches, functions.CardinalityMany, gets what its
// lane holds, up to MaxBatch messages, per invocation, in the host's batch shape). Delivery is at
// least once: a non-2xx answer is redelivered with an incremented DeliveryCount (a failed batch's
// messages one by one, as the host's abandoned messages come back), and after MaxDeliveryCount the
// message is dead-lettered and kept for inspection. Messages live in memory: a process crash loses accepted, undelivered messages,
// which a real broker would not; use it only where Service Bus cannot run.
type Local struct {
	cfg    LocalConfig
	log    *slog.Logger
	topics map[string][]*lane

	mu    sync.Mutex
	dead  []DeadLetter
	busy  sync.WaitGroup
	inFly int64
	cond  *sync.Cond
}

var _ outbox.Publisher = (*Local)(nil)

// NewLocal builds the transport's topology from the registry's Service Bus functions.
func NewLocal(reg *functions.Registry, cfg LocalConfig, logger *slog.Logger) *Local {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	l := &Local{cfg: cfg, log: logger, topics: map[string][]*lane{}}
	l.cond = sync.NewCond(&l.mu)
	for _, fn := range reg.Functions() {
		if fn.ServiceBus == nil {
			continue
		}
		ln := &lane{fn: fn.Name, types: fn.ServiceBus.EventTypes, many: fn.ServiceBus.Cardinality == functions.CardinalityMany,
			queues: make([]*queue, cfg.Partitions)}
		for i := range ln.queues {
			ln.queues[i] = newQueue(cfg.QueueCapacity)
		}
		l.topics[fn.ServiceBus.Topic] = append(l.topics[fn.ServiceBus.Topic], ln)
	}
	return l
}

// ErrBusy is returned by Publish when a lane is full.
var ErrBusy = errors.New("bus: local transport is full")

// Publish implements outbox.Publisher: each message goes into the lane of every subscription whose
// filter matches it. If a lane is full it returns ErrBusy; messages placed before that are still
// delivered, and the outbox publishes them again later, which consumers absorb by event id.
func (l *Local) Publish(ctx context.Context, topic string, msgs []outbox.Message) error {
	lanes := l.topics[topic]
	for _, m := range msgs {
		for _, ln := range lanes {
			if ln.types != nil && !slices.Contains(ln.types, m.Subject) {
				continue
			}
			q := ln.queues[partition(m.Key, len(ln.queues))]
			if err := ctx.Err(); err != nil {
				return err
			}
			l.mu.Lock()
			l.inFly++
			l.mu.Unlock()
			if !q.push(envelope{msg: m, enqueued: time.Now().UTC()}) {
				l.done()
				return ErrBusy
			}
		}
	}
	return nil
}

func partition(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Start runs the delivery workers until ctx is done, invoking functions through h (the app's
// HTTP handler, exactly as the host would call it).
func (l *Local) Start(ctx context.Context, h http.Handler) {
	for _, lanes := range l.topics {
		for _, ln := range lanes {
			for _, q := range ln.queues {
				l.busy.Add(1)
				go func() {
					defer l.busy.Done()
					l.work(ctx, h, ln, q)
				}()
			}
		}
	}
}

// Wait blocks until Start's workers have stopped (after ctx is done).
func (l *Local) Wait() { l.busy.Wait() }

// Pending is how many accepted messages are not yet delivered or dead-lettered.
func (l *Local) Pending() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFly
}

// Idle blocks until every accepted message has been delivered or dead-lettered, or ctx is done.
func (l *Local) Idle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.inFly > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.cond.Wait()
	}
	return nil
}

func (l *Local) done() {
	l.mu.Lock()
	l.inFly--
	if l.inFly == 0 {
		l.cond.Broadcast()
	}
	l.mu.Unlock()
}

func (l *Local) work(ctx context.Context, h http.Handler, ln *lane, q *queue) {
	for {
		if ctx.Err() != nil {
			return
		}
		env, ok := q.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.ready:
			}
			continue
		}
		if !ln.many {
			l.deliver(ctx, h, ln.fn, env)
			l.done()
			continue
		}
		// A batch: what the lane holds now, up to MaxBatch, in order (the host likewise hands over
		// what has arrived, up to maxMessageBatchSize).
		batch := []envelope{env}
		for len(batch) < l.cfg.MaxBatch {
			next, ok := q.pop()
			if !ok {
				break
			}
			batch = append(batch, next)
		}
		l.deliverBatch(ctx, h, ln.fn, batch)
		for range batch {
			l.done()
		}
	}
}

// deliverBatch delivers a batch in one invocation. The host settles a batch as a whole: a non-2xx
// answer abandons every message of it, and abandoned messages come back on their own. So after a
// failed batch each message is redelivered alone (a batch of one, DeliveryCount going on from 2),
// in order, until it succeeds or, after MaxDeliveryCount deliveries, is dead-lettered: a poisoned
// message goes to the dead letters alone, its batch-mates (applied or held back by the consumer)
// succeed on their redelivery.
func (l *Local) deliverBatch(ctx context.Context, h http.Handler, fn string, batch []envelope) {
	if status := l.invokeBatch(ctx, h, fn, batch, 1); status >= 200 && status < 300 || ctx.Err() != nil {
		return
	}
	for _, env := range batch {
		status := 0
		for count := 2; count <= l.cfg.MaxDeliveryCount; count++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(count-1) * l.cfg.RedeliveryDelay):
			}
			if status = l.invokeBatch(ctx, h, fn, []envelope{env}, count); status >= 200 && status < 300 || ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			return
		}
		if status < 200 || status >= 300 {
			l.deadLetter(fn, env.msg, status)
		}
	}
}

// invokeBatch invokes fn once with batch in the host's batch shape, every message at delivery
// count, and returns the answer's status (0 when the invocation could not be made).
func (l *Local) invokeBatch(ctx context.Context, h http.Handler, fn string, batch []envelope, count int) int {
	bodies := make([][]byte, len(batch))
	metas := make([]functions.ServiceBusMetadata, len(batch))
	for i, env := range batch {
		m := env.msg
		bodies[i] = m.Body
		metas[i] = functions.ServiceBusMetadata{MessageID: m.ID, DeliveryCount: count, EnqueuedTimeUTC: env.enqueued,
			ContentType: m.ContentType, CorrelationID: m.CorrelationID, Subject: m.Subject, ApplicationProperties: m.Properties}
	}
	data, meta := functions.ServiceBusBatch(bodies, metas)
	for k, v := range functions.SysMetadata(fn, time.Now()) {
		meta[k] = v
	}
	status, _, _, err := functions.Invoke(ctx, h, fn, map[string]any{functions.ServiceBusBinding: data}, meta)
	if err != nil {
		return 0
	}
	return status
}

// deliver tries one message until it succeeds or is dead-lettered; the lane waits meanwhile, so
// later messages of the same aggregate are never delivered before it.
func (l *Local) deliver(ctx context.Context, h http.Handler, fn string, env envelope) {
	m := env.msg
	status := 0
	for count := 1; count <= l.cfg.MaxDeliveryCount; count++ {
		if ctx.Err() != nil {
			return
		}
		data, meta := functions.ServiceBusMessage(m.Body, l.cfg.Encoding, functions.ServiceBusMetadata{
			MessageID: m.ID, DeliveryCount: count, EnqueuedTimeUTC: env.enqueued, ContentType: m.ContentType,
			CorrelationID: m.CorrelationID, Subject: m.Subject, ApplicationProperties: m.Properties,
		})
		for k, v := range functions.SysMetadata(fn, time.Now()) {
			meta[k] = v
		}
		var err error
		status, _, _, err = functions.Invoke(ctx, h, fn, map[string]any{functions.ServiceBusBinding: data}, meta)
		if err == nil && status >= 200 && status < 300 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(count) * l.cfg.RedeliveryDelay):
		}
	}
	l.deadLetter(fn, m, status)
}

// deadLetter keeps m, which failed MaxDeliveryCount deliveries to fn (the last answered status).
func (l *Local) deadLetter(fn string, m outbox.Message, status int) {
	l.mu.Lock()
	if len(l.dead) >= l.cfg.DeadLetterCapacity {
		l.dead = l.dead[1:]
	}
	l.dead = append(l.dead, DeadLetter{Function: fn, MessageID: m.ID, Subject: m.Subject,
		DeliveryCount: l.cfg.MaxDeliveryCount, LastStatus: status, DeadLetterAt: time.Now().UTC(), Body: string(m.Body)})
	l.mu.Unlock()
	l.log.Error("bus: message dead-lettered", "function", fn, "messageId", m.ID, "subject", m.Subject,
		"deliveryCount", l.cfg.MaxDeliveryCount, "lastStatus", status)
}

// DeadLetters returns the dead-lettered messages, oldest first; empty, never nil, when there are none.
func (l *Local) DeadLetters() []DeadLetter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append(make([]DeadLetter, 0, len(l.dead)), l.dead...)
}

// String describes the topology, for the start-up log.
func (l *Local) String() string {
	n := 0
	for _, lanes := range l.topics {
		n += len(lanes)
	}
	return fmt.Sprintf("local transport: %d topics, %d subscriptions", len(l.topics), n)
}
