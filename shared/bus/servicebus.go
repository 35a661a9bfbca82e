package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"spine/shared/outbox"
)

// The narrow part of the azservicebus SDK the publisher uses, so its batching and failure
// handling are tested without a namespace. sbSender wraps the real *azservicebus.Sender.
type (
	messageBatch interface {
		AddMessage(m *azservicebus.Message) error
		NumMessages() int32
	}
	batchSender interface {
		NewBatch(ctx context.Context) (messageBatch, error)
		SendBatch(ctx context.Context, b messageBatch) error
		Close(ctx context.Context) error
	}
)

type sdkBatch struct{ b *azservicebus.MessageBatch }

func (s sdkBatch) AddMessage(m *azservicebus.Message) error { return s.b.AddMessage(m, nil) }
func (s sdkBatch) NumMessages() int32                       { return s.b.NumMessages() }

type sbSender struct{ s *azservicebus.Sender }

func (s sbSender) NewBatch(ctx context.Context) (messageBatch, error) {
	b, err := s.s.NewMessageBatch(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sdkBatch{b}, nil
}

func (s sbSender) SendBatch(ctx context.Context, b messageBatch) error {
	return s.s.SendMessageBatch(ctx, b.(sdkBatch).b, nil)
}

func (s sbSender) Close(ctx context.Context) error { return s.s.Close(ctx) }

// ServiceBus publishes to Azure Service Bus topics (one per publishing service). The client and
// one sender per topic are created once and reused. Safe for concurrent use.
type ServiceBus struct {
	newSender func(topic string) (batchSender, error)
	close     func(context.Context) error

	mu      sync.Mutex
	senders map[string]batchSender
}

var _ outbox.Publisher = (*ServiceBus)(nil)

// NewServiceBus connects with a connection string (secret; a Key Vault reference in app settings)
// or, when it is empty, to the fully qualified namespace with the managed identity.
func NewServiceBus(connectionString, namespace string) (*ServiceBus, error) {
	var c *azservicebus.Client
	var err error
	if connectionString != "" {
		c, err = azservicebus.NewClientFromConnectionString(connectionString, nil)
		if err != nil {
			return nil, errors.New("bus: the Service Bus connection string is malformed")
		}
	} else {
		cred, cerr := azidentity.NewDefaultAzureCredential(nil)
		if cerr != nil {
			return nil, fmt.Errorf("bus: credential: %w", cerr)
		}
		if c, err = azservicebus.NewClient(namespace, cred, nil); err != nil {
			return nil, errors.New("bus: the Service Bus namespace is malformed")
		}
	}
	return &ServiceBus{
		newSender: func(topic string) (batchSender, error) {
			s, err := c.NewSender(topic, nil)
			if err != nil {
				return nil, err
			}
			return sbSender{s}, nil
		},
		close:   c.Close,
		senders: map[string]batchSender{},
	}, nil
}

// Close closes every sender and the client.
func (p *ServiceBus) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.senders {
		_ = s.Close(ctx)
	}
	p.senders = map[string]batchSender{}
	if p.close != nil {
		return p.close(ctx)
	}
	return nil
}

func (p *ServiceBus) sender(topic string) (batchSender, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.senders[topic]; ok {
		return s, nil
	}
	s, err := p.newSender(topic)
	if err != nil {
		return nil, err
	}
	p.senders[topic] = s
	return s, nil
}

// toSBMessage maps an outbox message to a Service Bus message: MessageId = event id (duplicate
// detection), ContentType application/cloudevents+json, Subject = event type, and the application
// properties subscriptions filter on.
func toSBMessage(m outbox.Message) *azservicebus.Message {
	msg := &azservicebus.Message{
		MessageID:             &m.ID,
		Body:                  m.Body,
		ContentType:           &m.ContentType,
		Subject:               &m.Subject,
		ApplicationProperties: m.Properties,
	}
	if m.CorrelationID != "" {
		msg.CorrelationID = &m.CorrelationID
	}
	return msg
}

// Publish implements outbox.Publisher with as few batches as the broker's size limit allows. A
// message too large for an empty batch is refused alone (code message-too-large) and blocks its
// aggregate's later messages; a failed send refuses that batch and everything after it.
func (p *ServiceBus) Publish(ctx context.Context, topic string, msgs []outbox.Message) error {
	s, err := p.sender(topic)
	if err != nil {
		return fmt.Errorf("bus: sender for %s: %w", topic, ErrUnavailable)
	}
	pe := &outbox.PublishError{Failed: map[int]string{}, Blocked: map[int]bool{}}
	refusedKeys := map[string]bool{}
	var batch messageBatch
	var inBatch []int
	send := func() bool {
		if batch == nil || batch.NumMessages() == 0 {
			return true
		}
		if err := s.SendBatch(ctx, batch); err != nil {
			for _, i := range inBatch {
				pe.Failed[i] = "broker-unavailable"
			}
			return false
		}
		batch, inBatch = nil, nil
		return true
	}
	for i, m := range msgs {
		if refusedKeys[m.Key] {
			pe.Blocked[i] = true
			continue
		}
		if batch == nil {
			if batch, err = s.NewBatch(ctx); err != nil {
				return fmt.Errorf("bus: new batch: %w", ErrUnavailable)
			}
		}
		err := batch.AddMessage(toSBMessage(m))
		if errors.Is(err, azservicebus.ErrMessageTooLarge) && batch.NumMessages() > 0 {
			if !send() {
				return failRest(pe, msgs, i)
			}
			if batch, err = s.NewBatch(ctx); err != nil {
				return fmt.Errorf("bus: new batch: %w", ErrUnavailable)
			}
			err = batch.AddMessage(toSBMessage(m))
		}
		if err != nil {
			pe.Failed[i] = "message-too-large"
			refusedKeys[m.Key] = true
			continue
		}
		inBatch = append(inBatch, i)
	}
	if !send() {
		return pe
	}
	if len(pe.Failed) == 0 && len(pe.Blocked) == 0 {
		return nil
	}
	return pe
}

// failRest marks message i and every later one as refused after a failed send.
func failRest(pe *outbox.PublishError, msgs []outbox.Message, from int) error {
	for j := from; j < len(msgs); j++ {
		if !pe.Blocked[j] {
			pe.Failed[j] = "broker-unavailable"
		}
	}
	return pe
}

// ErrUnavailable is wrapped when the broker cannot be reached; SDK text (which names the
// namespace) stays out of errors that could reach a response.
var ErrUnavailable = errors.New("bus: Service Bus unavailable")
