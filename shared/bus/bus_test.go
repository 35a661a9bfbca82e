package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/labstack/echo/v4"

	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/outbox"
	"spine/shared/problem"
	"spine/shared/tenancy"
)

func event(t *testing.T, tenant tenancy.TenantID, typ string, n int) outbox.Message {
	t.Helper()
	ev, err := events.New("tenants", typ, tenant.String(), tenant.String(), map[string]int{"n": n},
		events.Meta{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(ev)
	return outbox.Message{ID: ev.ID, Key: tenant.String() + "/" + tenant.String(), Body: body, ContentType: events.ContentType,
		Subject: typ, Properties: map[string]any{"eventType": typ, "tenantId": tenant.String()}}
}

type seen struct {
	mu    sync.Mutex
	got   []Delivery
	fails map[string]int // message id -> failures still to answer
}

// app is an echo serving the registry's Service Bus functions, exactly as the binary does.
func app(t *testing.T, s *seen, reg *functions.Registry) http.Handler {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	functions.Mount(e, reg, nil)
	return e
}

func consumer(s *seen) functions.InvocationHandler {
	return func(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
		d, err := DecodeEvent(inv)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fails[d.Event.ID] > 0 {
			s.fails[d.Event.ID]--
			return nil, errors.New("transient failure")
		}
		s.got = append(s.got, d)
		return &functions.Result{}, nil
	}
}

func TestLocal_DeliversThroughTheInvocationPathWithFiltersAndOrder(t *testing.T) {
	s := &seen{fails: map[string]int{}}
	other := &seen{fails: map[string]int{}}
	reg := &functions.Registry{}
	if err := reg.Add(
		functions.Function{Name: "AuditOnTenantsEvent", ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants", Subscription: "audit", Connection: "SB"}, Handler: consumer(s)},
		functions.Function{Name: "BillingOnTenantsEvent", ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants", Subscription: "billing", Connection: "SB",
			EventTypes: []string{"TenantProvisioned"}}, Handler: consumer(other)},
	); err != nil {
		t.Fatal(err)
	}
	l := NewLocal(reg, LocalConfig{RedeliveryDelay: time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); l.Wait() }()
	l.Start(ctx, app(t, s, reg))
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	var msgs []outbox.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, event(t, a, "TenantRegistered", i), event(t, b, "TenantProvisioned", i))
	}
	s.fails[msgs[0].ID] = 2 // the first message fails twice, then succeeds: later ones wait behind it
	if err := l.Publish(ctx, "tenants", msgs); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := l.Idle(wctx); err != nil {
		t.Fatal(err)
	}
	if len(s.got) != 20 || len(other.got) != 10 {
		t.Fatalf("audit got %d (want 20), billing got %d (want 10: filtered)", len(s.got), len(other.got))
	}
	next := map[string]int{}
	for _, d := range s.got {
		var data struct{ N int }
		_ = json.Unmarshal(d.Event.Data, &data)
		if data.N != next[d.Event.TenantID] {
			t.Fatalf("tenant %s: got n=%d, want %d (order)", d.Event.TenantID, data.N, next[d.Event.TenantID])
		}
		next[d.Event.TenantID]++
		if d.Meta.MessageID != d.Event.ID || d.Meta.ContentType != events.ContentType {
			t.Fatalf("metadata: %+v", d.Meta)
		}
		if d.Event.ID == msgs[0].ID && d.Meta.DeliveryCount != 3 {
			t.Fatalf("redelivered message had DeliveryCount %d, want 3", d.Meta.DeliveryCount)
		}
	}
}

func TestLocal_DeadLettersAfterMaxDeliveries(t *testing.T) {
	s := &seen{fails: map[string]int{}}
	reg := &functions.Registry{}
	_ = reg.Add(functions.Function{Name: "AuditOnTenantsEvent", ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants", Subscription: "audit", Connection: "SB"}, Handler: consumer(s)})
	l := NewLocal(reg, LocalConfig{MaxDeliveryCount: 3, RedeliveryDelay: time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); l.Wait() }()
	l.Start(ctx, app(t, s, reg))
	tid := tenancy.NewTenantID()
	poison := event(t, tid, "TenantRegistered", 0)
	poison.Body = []byte(`{"not":"a cloudevent"}`)
	good := event(t, tenancy.NewTenantID(), "TenantRegistered", 0)
	if err := l.Publish(ctx, "tenants", []outbox.Message{poison, good}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := l.Idle(wctx); err != nil {
		t.Fatal(err)
	}
	dl := l.DeadLetters()
	if len(dl) != 1 || dl[0].MessageID != poison.ID || dl[0].DeliveryCount != 3 || dl[0].LastStatus != http.StatusBadRequest {
		t.Fatalf("dead letters = %+v", dl)
	}
	if len(s.got) != 1 || s.got[0].Event.ID != good.ID {
		t.Fatalf("the good message was stalled: %+v", s.got)
	}
}

func TestDecodeEvent_EveryHostEncodingAndTenantChecks(t *testing.T) {
	tid := tenancy.NewTenantID()
	m := event(t, tid, "TenantRegistered", 1)
	for _, enc := range []functions.Encoding{functions.EncodingObject, functions.EncodingString, functions.EncodingDoubleQuoted, functions.EncodingBase64} {
		t.Run(enc.String(), func(t *testing.T) {
			inv := invocation(t, m.Body, enc, m.Properties)
			d, err := DecodeEvent(inv)
			if err != nil || d.TenantID != tid || d.Event.Type != "TenantRegistered" {
				t.Fatalf("%+v %v", d, err)
			}
		})
	}
	for name, tc := range map[string]struct {
		body  string
		props map[string]any
	}{
		"not json":           {`hello`, nil},
		"id not a uuid":      {`{"specversion":"1.0","id":"x","source":"/services/t","type":"T"}`, nil},
		"bad tenant":         {`{"specversion":"1.0","id":"x","source":"/services/t","type":"T","tenantid":"nope"}`, nil},
		"property disagrees": {string(m.Body), map[string]any{"tenantId": tenancy.NewTenantID().String()}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeEvent(invocation(t, []byte(tc.body), functions.EncodingString, tc.props))
			var p *problem.Problem
			if !errors.As(err, &p) || p.Status != 400 {
				t.Fatalf("err = %v, want a 400 problem", err)
			}
		})
	}
}

func invocation(t *testing.T, body []byte, enc functions.Encoding, props map[string]any) *functions.Invocation {
	t.Helper()
	data, meta := functions.ServiceBusMessage(body, enc, functions.ServiceBusMetadata{MessageID: "m", DeliveryCount: 1,
		EnqueuedTimeUTC: time.Now(), ApplicationProperties: props})
	raw, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: data}, "Metadata": meta})
	var inv functions.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		t.Fatal(err)
	}
	return &inv
}

// fakeSender stands in for the azservicebus sender: batches hold at most maxPerBatch messages,
// a body over tooLarge bytes never fits, and sends fail while down.
type fakeSender struct {
	maxPerBatch, tooLarge int
	down                  bool
	sent                  [][]*azservicebus.Message
}

type fakeBatch struct {
	s    *fakeSender
	msgs []*azservicebus.Message
}

func (b *fakeBatch) AddMessage(m *azservicebus.Message) error {
	if len(m.Body) > b.s.tooLarge || len(b.msgs) >= b.s.maxPerBatch {
		return azservicebus.ErrMessageTooLarge
	}
	b.msgs = append(b.msgs, m)
	return nil
}
func (b *fakeBatch) NumMessages() int32 { return int32(len(b.msgs)) }

func (f *fakeSender) NewBatch(context.Context) (messageBatch, error) { return &fakeBatch{s: f}, nil }
func (f *fakeSender) SendBatch(_ context.Context, b messageBatch) error {
	if f.down {
		return errors.New("amqp: link detached")
	}
	f.sent = append(f.sent, b.(*fakeBatch).msgs)
	return nil
}
func (f *fakeSender) Close(context.Context) error { return nil }

func newSB(f *fakeSender) *ServiceBus {
	return &ServiceBus{newSender: func(string) (batchSender, error) { return f, nil }, senders: map[string]batchSender{}}
}

func TestServiceBus_BatchesAndMapsMessages(t *testing.T) {
	f := &fakeSender{maxPerBatch: 3, tooLarge: 1 << 20}
	p := newSB(f)
	tid := tenancy.NewTenantID()
	var msgs []outbox.Message
	for i := 0; i < 7; i++ {
		msgs = append(msgs, event(t, tid, "TenantRegistered", i))
	}
	msgs[0].CorrelationID = "corr-1"
	if err := p.Publish(context.Background(), "tenants", msgs); err != nil {
		t.Fatal(err)
	}
	if len(f.sent) != 3 || len(f.sent[0]) != 3 || len(f.sent[2]) != 1 {
		t.Fatalf("batches: %d", len(f.sent))
	}
	m := f.sent[0][0]
	if *m.MessageID != msgs[0].ID || *m.ContentType != events.ContentType || *m.Subject != "TenantRegistered" ||
		*m.CorrelationID != "corr-1" || m.ApplicationProperties["tenantId"] != tid.String() || string(m.Body) != string(msgs[0].Body) {
		t.Fatalf("mapped message: %+v", m)
	}
	if f.sent[1][0].CorrelationID != nil {
		t.Fatal("empty correlation id must not be sent")
	}
}

func TestServiceBus_TooLargeMessageRefusedAloneAndBlocksItsAggregate(t *testing.T) {
	f := &fakeSender{maxPerBatch: 100, tooLarge: 2000}
	p := newSB(f)
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	big := event(t, a, "TenantRegistered", 0)
	big.Body = append(big.Body[:len(big.Body)-1], []byte(fmt.Sprintf(`,"pad":"%0*d"}`, 3000, 0))...)
	msgs := []outbox.Message{big, event(t, b, "TenantRegistered", 0), event(t, a, "TenantRegistered", 1), event(t, b, "TenantRegistered", 1)}
	err := p.Publish(context.Background(), "tenants", msgs)
	var pe *outbox.PublishError
	if !errors.As(err, &pe) || pe.Failed[0] != "message-too-large" || !pe.Blocked[2] || len(pe.Failed) != 1 || len(pe.Blocked) != 1 {
		t.Fatalf("err = %v", err)
	}
	if len(f.sent) != 1 || len(f.sent[0]) != 2 || *f.sent[0][0].MessageID != msgs[1].ID || *f.sent[0][1].MessageID != msgs[3].ID {
		t.Fatalf("sent: %v", f.sent)
	}
}

func TestServiceBus_SendFailureRefusesTheBatch(t *testing.T) {
	f := &fakeSender{maxPerBatch: 10, tooLarge: 1 << 20, down: true}
	p := newSB(f)
	msgs := []outbox.Message{event(t, tenancy.NewTenantID(), "TenantRegistered", 0), event(t, tenancy.NewTenantID(), "TenantRegistered", 0)}
	err := p.Publish(context.Background(), "tenants", msgs)
	var pe *outbox.PublishError
	if !errors.As(err, &pe) || len(pe.Failed) != 2 || pe.Failed[0] != "broker-unavailable" {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "amqp") {
		t.Fatalf("SDK text leaked: %v", err)
	}
}

func TestLocal_FullLaneRefusesPublishWithErrBusyAndKeepsWhatItAccepted(t *testing.T) {
	s := &seen{fails: map[string]int{}}
	reg := &functions.Registry{}
	_ = reg.Add(functions.Function{Name: "AuditOnTenantsEvent", ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants", Subscription: "audit", Connection: "SB"}, Handler: consumer(s)})
	l := NewLocal(reg, LocalConfig{Partitions: 1, QueueCapacity: 3, RedeliveryDelay: time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); l.Wait() }()
	tid := tenancy.NewTenantID()
	var msgs []outbox.Message
	for i := 0; i < 4; i++ {
		msgs = append(msgs, event(t, tid, "TenantRegistered", i))
	}
	// No worker runs yet: the lane fills at its bound and refuses the fourth message.
	if err := l.Publish(ctx, "tenants", msgs); !errors.Is(err, ErrBusy) {
		t.Fatalf("Publish of 4 into a lane of 3: err = %v, want ErrBusy", err)
	}
	l.Start(ctx, app(t, s, reg))
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := l.Idle(wctx); err != nil {
		t.Fatal(err)
	}
	if len(s.got) != 3 {
		t.Fatalf("delivered %d, want the 3 accepted", len(s.got))
	}
	for i, d := range s.got {
		if d.Event.ID != msgs[i].ID {
			t.Fatalf("delivery %d is %s, want %s (order)", i, d.Event.ID, msgs[i].ID)
		}
	}
	// The lane has room again once its messages are delivered.
	if err := l.Publish(ctx, "tenants", msgs[3:]); err != nil {
		t.Fatalf("Publish after the lane drained: %v", err)
	}
}

func TestQueue_KeepsOrderThroughGrowthAndReuseAndReleasesABurstsStorage(t *testing.T) {
	q := newQueue(1000)
	next, want := 0, 0
	push := func(n int) {
		for range n {
			if !q.push(envelope{msg: outbox.Message{ID: fmt.Sprint(next)}}) {
				t.Fatalf("push %d refused below the bound", next)
			}
			next++
		}
	}
	pop := func(n int) {
		for range n {
			env, ok := q.pop()
			if !ok || env.msg.ID != fmt.Sprint(want) {
				t.Fatalf("pop = %q %v, want %d", env.msg.ID, ok, want)
			}
			want++
		}
	}
	push(1000)
	if q.push(envelope{}) {
		t.Fatal("push beyond the bound was accepted")
	}
	pop(700)
	push(600) // reuses the consumed front
	pop(900)
	if _, ok := q.pop(); ok {
		t.Fatal("pop from an empty queue returned a message")
	}
	if cap(q.items) != 0 {
		t.Fatalf("an emptied queue keeps %d slots after a burst, want its storage released", cap(q.items))
	}
	push(10)
	pop(10)
	if cap(q.items) == 0 || cap(q.items) > queueKeep {
		t.Fatalf("an emptied queue after a trickle keeps %d slots, want its small storage kept (≤ %d)", cap(q.items), queueKeep)
	}
}

// batchConsumer records each batch invocation's events (DecodeEvents) and fails a batch that holds
// a message still due to fail.
func batchConsumer(s *seen, sizes *[]int) functions.InvocationHandler {
	return func(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
		ds, bad, err := DecodeEvents(inv)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		*sizes = append(*sizes, len(ds))
		for _, d := range ds {
			if s.fails[d.Event.ID] > 0 {
				s.fails[d.Event.ID]--
				return nil, errors.New("transient failure")
			}
		}
		s.got = append(s.got, ds...)
		return &functions.Result{}, bad
	}
}

// A function that takes batches gets what its lane holds per invocation, in the host's batch
// shape and in order; after a failed batch each of its messages is redelivered alone with an
// incremented delivery count (as the host's abandoned messages come back), so a poisoned message
// is dead-lettered alone and its batch-mates are delivered.
func TestLocal_DeliversBatchesInOrderAndRedeliversAFailedOneMessageByMessage(t *testing.T) {
	s := &seen{fails: map[string]int{}}
	var sizes []int
	reg := &functions.Registry{}
	if err := reg.Add(functions.Function{Name: "AuditOnTenantsEvent", ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants",
		Subscription: "audit", Connection: "SB", Cardinality: functions.CardinalityMany}, Handler: batchConsumer(s, &sizes)}); err != nil {
		t.Fatal(err)
	}
	l := NewLocal(reg, LocalConfig{Partitions: 1, MaxBatch: 8, MaxDeliveryCount: 3, RedeliveryDelay: time.Millisecond}, nil)
	a := tenancy.NewTenantID()
	var msgs []outbox.Message
	for i := 0; i < 20; i++ {
		msgs = append(msgs, event(t, a, "TenantTouched", i))
	}
	s.fails[msgs[0].ID] = 1 // the first batch fails once
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); l.Wait() }()
	if err := l.Publish(ctx, "tenants", msgs); err != nil { // queued before the worker starts: batches of 8
		t.Fatal(err)
	}
	l.Start(ctx, app(t, s, reg))
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := l.Idle(wctx); err != nil {
		t.Fatal(err)
	}
	if len(s.got) != 20 {
		t.Fatalf("got %d events, want 20", len(s.got))
	}
	for i, d := range s.got {
		var data struct{ N int }
		_ = json.Unmarshal(d.Event.Data, &data)
		if data.N != i || d.Meta.MessageID != d.Event.ID {
			t.Fatalf("event %d: n=%d id %s/%s (order or metadata)", i, data.N, d.Meta.MessageID, d.Event.ID)
		}
		if want := 1 + boolInt(i < 8); d.Meta.DeliveryCount != want {
			t.Fatalf("event %d: DeliveryCount %d, want %d (the first batch's messages were redelivered)", i, d.Meta.DeliveryCount, want)
		}
	}
	if want := []int{8, 1, 1, 1, 1, 1, 1, 1, 1, 8, 4}; fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Fatalf("batch sizes %v, want %v", sizes, want)
	}

	// A batch holding a message that never succeeds: that message alone is dead-lettered after
	// MaxDeliveryCount deliveries; its batch-mate is delivered.
	b := tenancy.NewTenantID()
	poisoned := []outbox.Message{event(t, b, "TenantTouched", 0), event(t, b, "TenantTouched", 1)}
	s.fails[poisoned[1].ID] = 100
	if err := l.Publish(ctx, "tenants", poisoned); err != nil {
		t.Fatal(err)
	}
	if err := l.Idle(wctx); err != nil {
		t.Fatal(err)
	}
	dl := l.DeadLetters()
	if len(dl) != 1 || dl[0].MessageID != poisoned[1].ID || dl[0].DeliveryCount != 3 {
		t.Fatalf("dead letters = %+v, want the poisoned message alone", dl)
	}
	if len(s.got) != 21 || s.got[20].Event.ID != poisoned[0].ID {
		t.Fatalf("the poisoned message's batch-mate was not delivered (%d events)", len(s.got))
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
