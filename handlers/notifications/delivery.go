package notifications

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"spine/shared/contracts"
	"spine/shared/egress"
	"spine/shared/events"
	spinemail "spine/shared/mail"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Attempt starts the due attempt of one notification (NotificationDispatch, after its inbox
// claim) and records it. Nothing happens when the notification is not due or another instance
// holds it: a redelivered NotificationRequested never sends twice once Delivered.
func (s *Service) Attempt(ctx context.Context, tenant tenancy.TenantID, id string) error {
	now := s.cfg.Now().UTC()
	n, ok, err := s.store.ClaimOne(ctx, sqlstore.TenantScope(tenant), tenant.String(), id, now, now.Add(attemptLease))
	if err != nil || !ok {
		return err
	}
	return s.deliver(ctx, n)
}

// Bounds of one NotificationRetries run. A run claims one batch (each row leased for
// attemptLease) and delivers it retryWorkers at a time, each attempt bounded by attemptTimeout,
// so a full batch ends within retryRounds × attemptTimeout (45 s) plus recording: well inside the
// lease (2 min: no row is re-claimed while its attempt runs) and the Functions timeout (5 min,
// host.json).
const (
	// RetryBatch is how many due notifications one run claims at most.
	RetryBatch = retryWorkers * retryRounds
	// RetryPerTenant is how many of one tenant's due notifications a batch holds at most, so one
	// tenant's backlog (e.g. to a slow endpoint) cannot take a whole batch and starve the others.
	RetryPerTenant = 10
	// retryWorkers is how many of a batch are delivered at once.
	retryWorkers = 8
	// retryRounds is how many attempts one worker runs per batch at most.
	retryRounds = 3
	// attemptTimeout bounds one attempt's sending: Key Vault and Blob reads and the call out (a
	// webhook's request itself is bounded by deliveryTimeout, 10 s; SMTP by its own timeout too).
	attemptTimeout = 15 * time.Second
	// retryStartBy: a run starts no attempt later than this after it began (a safety net: the
	// bounds above end a batch sooner). A claimed row not started stays leased, and is due again
	// when its lease ends.
	retryStartBy = retryRounds * attemptTimeout
)

// RunDue claims the due notifications of every tenant (FOR UPDATE SKIP LOCKED: instances share
// the work) — at most RetryBatch, at most RetryPerTenant of one tenant — and attempts them,
// tenants interleaved, starting none later than retryStartBy after it began. It returns how many
// it attempted.
func (s *Service) RunDue(ctx context.Context) (int, error) {
	began := time.Now()
	now := s.cfg.Now().UTC()
	due, err := s.store.ClaimDue(ctx, now, now.Add(attemptLease), RetryBatch, RetryPerTenant)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	due = interleaveTenants(due)
	work := make(chan Notification)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	attempted, late := 0, 0
	for range min(retryWorkers, len(due)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				if time.Since(began) > retryStartBy {
					mu.Lock()
					late++
					mu.Unlock()
					continue
				}
				err := s.deliver(ctx, n)
				mu.Lock()
				attempted++
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, n := range due {
		work <- n
	}
	close(work)
	wg.Wait()
	if late > 0 {
		s.log.WarnContext(ctx, "notification retries: run out of time; claimed attempts left to their lease", "notStarted", late)
	}
	return attempted, errors.Join(errs...)
}

// interleaveTenants orders a claimed batch (oldest due first) round-robin by tenant — every
// tenant's oldest, then every tenant's second, … — so the first round of workers serves many
// tenants rather than the one with the oldest backlog.
func interleaveTenants(due []Notification) []Notification {
	rank := make(map[string]int, len(due))
	idx := make([]int, len(due))
	for i, n := range due {
		idx[i] = rank[n.TenantID]
		rank[n.TenantID]++
	}
	order := make([]int, len(due))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return idx[order[x]] < idx[order[y]] })
	out := make([]Notification, len(due))
	for i, j := range order {
		out[i] = due[j]
	}
	return out
}

// result is one attempt's outcome before it is recorded.
type result struct {
	code      int
	class     string // "" on success
	permanent bool   // retrying cannot help
	gone      bool   // the endpoint answered 410: disable it
	// endpointFault: the webhook endpoint failed (no answer, or not 2xx): it counts towards the
	// endpoint's failure run. Our own troubles (store, Key Vault, a suspended tenant) do not.
	endpointFault bool
}

// deliver runs attempt n.Attempts of a claimed notification and records it.
func (s *Service) deliver(ctx context.Context, n Notification) error {
	sc := sqlstore.TenantScope(mustTenant(n.TenantID))
	start := s.cfg.Now().UTC()
	sendCtx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	var res result
	switch err := s.checkWritable(sendCtx, mustTenant(n.TenantID)); {
	case errors.Is(err, tenancy.ErrTenantSuspended):
		// Suspended or decommissioned: nothing is sent; the retries keep their schedule, so a
		// reactivated tenant's notification still goes out, and one that stays suspended fails.
		res = result{class: "tenant-suspended"}
	case err != nil:
		res = result{class: "store-unavailable"}
	default:
		res = s.send(sendCtx, sc, n)
	}
	latency := max(int(s.cfg.Now().Sub(start)/time.Millisecond), 0)
	a := Attempt{Attempt: n.Attempts, AttemptedAt: start, StatusCode: res.code, LatencyMS: latency, ErrorClass: res.class}
	now := s.cfg.Now().UTC()
	err := s.store.RecordAttempt(context.WithoutCancel(ctx), sc, n, a, now, func(cur Notification, e *Endpoint) (Outcome, []events.Event, bool) {
		return s.decide(ctx, cur, e, res, now)
	})
	if err != nil {
		return fmt.Errorf("notifications: recording attempt %d of %s: %w", a.Attempt, n.ID, err)
	}
	s.log.InfoContext(ctx, "notification attempt", "tenantId", n.TenantID, "notificationId", n.ID, "channel", n.Channel,
		"attempt", a.Attempt, "statusCode", a.StatusCode, "latencyMs", a.LatencyMS, "errorClass", a.ErrorClass)
	return nil
}

func mustTenant(s string) tenancy.TenantID {
	id, err := tenancy.ParseTenantID(s)
	if err != nil {
		return tenancy.TenantID{}
	}
	return id
}

// decide turns an attempt's result into the notification's next state, the endpoint's failure
// run, and the events: NotificationSent, NotificationFailed, WebhookEndpointDisabled.
func (s *Service) decide(ctx context.Context, n Notification, e *Endpoint, res result, now time.Time) (Outcome, []events.Event, bool) {
	var evs []events.Event
	emit := func(typ, subject string, data any) {
		ev, err := events.New(service, typ, subject, n.TenantID, data, events.Meta{Actor: "system:notifications"})
		if err == nil {
			evs = append(evs, ev)
		}
	}
	endpointChanged := false
	disable := func(reason string) {
		since := e.FailingSince
		e.Enabled, e.DisabledReason, e.DisabledAt = false, reason, &now
		endpointChanged = true
		emit(contracts.WebhookEndpointDisabled, e.ID, contracts.WebhookEndpointDisabledData{TenantID: n.TenantID, EndpointID: e.ID,
			Reason: reason, FailingSince: since, DisabledAt: now})
	}
	fail := func(class string) (Outcome, []events.Event, bool) {
		emit(contracts.NotificationFailed, n.ID, contracts.NotificationFailedData{TenantID: n.TenantID, NotificationID: n.ID,
			Channel: string(n.Channel), Attempts: n.Attempts, ErrorClass: class, FailedAt: now})
		return Outcome{Status: StatusFailed, FailedAt: &now, LastErrorClass: class}, evs, endpointChanged
	}
	if res.class == "" {
		if e != nil && e.FailingSince != nil {
			e.FailingSince, endpointChanged = nil, true
		}
		emit(contracts.NotificationSent, n.ID, contracts.NotificationSentData{TenantID: n.TenantID, NotificationID: n.ID,
			Channel: string(n.Channel), Attempts: n.Attempts, DeliveredAt: now})
		return Outcome{Status: StatusDelivered, DeliveredAt: &now}, evs, endpointChanged
	}
	if e != nil && e.Enabled && res.endpointFault {
		if e.FailingSince == nil {
			t := now
			e.FailingSince, endpointChanged = &t, true
		}
		switch {
		case res.gone:
			disable("gone")
			return fail(res.class)
		case now.Sub(*e.FailingSince) >= s.cfg.EndpointDisableAfter:
			disable("failing")
			return fail("endpoint-disabled")
		}
	}
	if res.permanent {
		return fail(res.class)
	}
	delay, ok := retryDelay(n.Attempts, s.cfg.RetryScale)
	if !ok {
		return fail(res.class)
	}
	next := now.Add(delay)
	return Outcome{Status: StatusSending, NextAttemptAt: &next, LastErrorClass: res.class}, evs, endpointChanged
}

// send makes one delivery; it never returns a response body.
func (s *Service) send(ctx context.Context, sc sqlstore.Scope, n Notification) result {
	atts, e, err := s.store.DeliveryContext(ctx, sc, n)
	switch {
	case errors.Is(err, ErrEndpointNotFound):
		return result{class: "endpoint-gone", permanent: true}
	case err != nil:
		return result{class: "store-unavailable"}
	}
	switch n.Channel {
	case ChannelInApp:
		return result{} // stored for the user to read: delivered
	case ChannelWebhook:
		if !e.Enabled {
			return result{class: "endpoint-disabled", permanent: true}
		}
		return s.sendWebhook(ctx, n, e, atts)
	case ChannelEmail:
		return s.sendEmail(ctx, n, atts)
	}
	return result{class: "invalid", permanent: true}
}

// webhookPayload is the JSON body of a webhook delivery (Standard Webhooks' type/timestamp/data
// shape). The same bytes on every attempt.
type webhookPayload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      webhookData `json:"data"`
}

type webhookData struct {
	NotificationID string           `json:"notificationId"`
	TenantID       string           `json:"tenantId"`
	Subject        string           `json:"subject"`
	Body           string           `json:"body"`
	Attachments    []attachmentJSON `json:"attachments"`
}

func (s *Service) sendWebhook(ctx context.Context, n Notification, e Endpoint, atts []Attachment) result {
	body, err := s.Body(ctx, n)
	if err != nil {
		return result{class: "store-unavailable"}
	}
	typ := n.EventType
	if typ == "" {
		typ = "notification"
	}
	payload, err := json.Marshal(webhookPayload{Type: typ, Timestamp: n.CreatedAt, Data: webhookData{NotificationID: n.ID,
		TenantID: n.TenantID, Subject: n.Subject, Body: body, Attachments: toAttachmentsJSON(atts)}})
	if err != nil {
		return result{class: "invalid", permanent: true}
	}
	sec, err := s.vault.GetVersion(ctx, e.Secret.Name, e.Secret.Version)
	if err != nil {
		return result{class: "secret-unavailable"}
	}
	ts := s.cfg.Now().Unix()
	sig, err := sign(sec.Value(), n.ID, ts, payload)
	if err != nil {
		return result{class: "secret-unavailable"}
	}
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(payload))
	if err != nil {
		return result{class: "connect"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Spine-Webhooks/1")
	req.Header.Set("webhook-id", n.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.http.Do(req)
	if err != nil {
		return result{class: egress.Classify(err), endpointFault: true}
	}
	// The body is drained (a little) for connection reuse and never kept.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
	class := statusClass(resp.StatusCode)
	return result{code: resp.StatusCode, class: class, gone: resp.StatusCode == http.StatusGone,
		permanent: resp.StatusCode == http.StatusGone, endpointFault: class != ""}
}

func (s *Service) sendEmail(ctx context.Context, n Notification, atts []Attachment) result {
	if s.mail == nil {
		return result{class: "connect"}
	}
	body, err := s.Body(ctx, n)
	if err != nil {
		return result{class: "store-unavailable"}
	}
	m := spinemail.Message{From: s.cfg.MailFrom, To: []string{n.Recipient}, Subject: n.Subject, Body: body, MessageID: n.ID}
	for _, a := range atts {
		data, err := s.blobs.Get(ctx, AttachmentsContainer, a.BlobName)
		if err != nil {
			return result{class: "store-unavailable"}
		}
		m.Attachments = append(m.Attachments, spinemail.Attachment{Name: a.Name, ContentType: a.ContentType, Data: data})
	}
	err = s.mail.Send(ctx, m)
	var me *spinemail.Error
	switch {
	case err == nil:
		return result{code: 250}
	case errors.As(err, &me):
		return result{code: me.Code, class: me.Class, permanent: me.Permanent()}
	}
	return result{class: "connect"}
}
