package outbox

import (
	"errors"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"spine/shared/httpx"
	"spine/shared/problem"
)

// Admin serves the operator view of every outbox: counts, parked rows and their replay, and the
// local transport's dead letters when it is the broker.
type Admin struct {
	Drainers map[string]*Drainer // by topic
	// DeadLetters lists the local transport's dead letters as a JSON array (never nil); nil when a
	// real broker keeps them (Service Bus dead-letter queues).
	DeadLetters func() any
}

// Routes mounts the outbox's operator API on ops, the operator group (auth.Operators: /api/ops,
// platform admin with platform.ops).
func (a *Admin) Routes(ops *echo.Group) {
	ops.GET("/outbox", a.counts)
	ops.GET("/outbox/:topic/parked", a.parked)
	ops.POST("/outbox/:topic/parked/:eventId/replay", a.replay)
	ops.GET("/dead-letters", a.deadLetters)
}

type topicCounts struct {
	Topic string `json:"topic"`
	Counts
}

func (a *Admin) counts(c echo.Context) error {
	out := httpx.Page[topicCounts]{Value: []topicCounts{}}
	for topic, d := range a.Drainers {
		n, err := d.Counts(c.Request().Context())
		if err != nil {
			return err
		}
		out.Value = append(out.Value, topicCounts{Topic: topic, Counts: n})
	}
	return c.JSON(http.StatusOK, out)
}

func (a *Admin) drainer(c echo.Context) (*Drainer, error) {
	d, ok := a.Drainers[c.Param("topic")]
	if !ok {
		return nil, problem.New(http.StatusNotFound, "outbox-not-found", "No outbox publishes to this topic.")
	}
	return d, nil
}

func (a *Admin) parked(c echo.Context) error {
	d, err := a.drainer(c)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 100, 1000)
	if err != nil {
		return err
	}
	rows, err := d.Parked(c.Request().Context(), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.Page[ParkedRow]{Value: rows})
}

func (a *Admin) replay(c echo.Context) error {
	d, err := a.drainer(c)
	if err != nil {
		return err
	}
	id, perr := uuid.Parse(c.Param("eventId"))
	if perr != nil {
		return problem.New(http.StatusNotFound, "not-parked", "No parked row with this event id.")
	}
	err = d.Replay(c.Request().Context(), id.String())
	if errors.Is(err, ErrNotParked) {
		return problem.New(http.StatusNotFound, "not-parked", "No parked row with this event id.")
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}

func (a *Admin) deadLetters(c echo.Context) error {
	if a.DeadLetters == nil {
		return problem.New(http.StatusNotFound, "no-local-dead-letters",
			"Service Bus keeps dead letters in each subscription's dead-letter queue.")
	}
	return c.JSON(http.StatusOK, map[string]any{"value": a.DeadLetters()}) // a list: DeadLetters never returns nil
}
