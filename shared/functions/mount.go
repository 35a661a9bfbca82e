package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/problem"
	"spine/shared/telemetry"
)

type ctxKey struct{}

// WithInvocation returns a context carrying inv, as Mount gives handlers.
func WithInvocation(ctx context.Context, inv *Invocation) context.Context {
	return context.WithValue(ctx, ctxKey{}, inv)
}

// FromContext returns the invocation a context carries, if any.
func FromContext(ctx context.Context) (*Invocation, bool) {
	inv, ok := ctx.Value(ctxKey{}).(*Invocation)
	return inv, ok && inv != nil
}

// Mount serves the host protocol on e:
//
//   - GET / answers 200 with an empty body: the host pings it until the handler is ready.
//   - POST /<Name> for every function of r that has a Handler (timer and Service Bus functions): the
//     request is decoded with DecodeInvocation (limit: the function's MaxBodyBytes, else
//     DefaultMaxBodyBytes), the handler is called with a context carrying the invocation
//     (FromContext), and its Result is answered 200 application/json, with a nil Outputs written as {}
//     and a nil Logs as []. A decoding or handler error is returned to echo, whose HTTPErrorHandler
//     (problem.Handler in Spine) answers problem+json with a non-2xx status, which fails the invocation.
//
// mw are applied to every POST route, inside the logging; e's own middleware applies as usual.
// Each invocation logs exactly one line to logger when its response status is written: function,
// invocationId, trigger, status, duration (readable, e.g. "1.234ms"), traceId (when the invocation
// has a trace), deliveryCount (Service Bus) and error (if any); at Info for 2xx (Debug when the
// Result is Quiet), Warn for 4xx and Error otherwise. Mount reads r once: functions added later
// are not served. Call it once per echo instance, before serving.
//
// Each decoded invocation runs in a span named after the function (see telemetry): kind consumer
// for Service Bus functions, its parent the message's trace context (the traceparent application
// property, else the CloudEvent's traceparent), and kind server otherwise.
func Mount(e *echo.Echo, r *Registry, logger *slog.Logger, mw ...echo.MiddlewareFunc) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e.GET("/", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	for _, fn := range r.Functions() {
		if fn.Handler == nil {
			continue
		}
		chain := append([]echo.MiddlewareFunc{logInvocation(fn, logger)}, mw...)
		e.POST("/"+fn.Name, serveInvocation(fn), chain...)
	}
}

// invocationLog is what serveInvocation tells logInvocation about an invocation.
type invocationLog struct {
	inv   *Invocation
	err   error
	quiet bool
}

const logKey = "spine.functions.invocationLog"

// logInvocation logs one line per invocation, when the response status is written (by the handler, or
// by echo's error handler for a returned error), so the status logged is the status answered.
func logInvocation(fn Function, logger *slog.Logger) echo.MiddlewareFunc {
	kind := fn.Kind()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			start := time.Now()
			st := &invocationLog{}
			c.Set(logKey, st)
			res := c.Response()
			res.Before(func() {
				attrs := []slog.Attr{
					slog.String("function", fn.Name),
					slog.String("invocationId", c.Request().Header.Get(HeaderInvocationID)),
					slog.String("trigger", kind),
					slog.Int("status", res.Status),
					slog.String("duration", telemetry.FormatDuration(time.Since(start))),
				}
				if id := telemetry.TraceID(c.Request().Context()); id != "" {
					attrs = append(attrs, slog.String("traceId", id))
				}
				if kind == KindServiceBus && st.inv != nil {
					if st.inv.IsServiceBusBatch() {
						// A batch: how many messages, and the highest delivery count among them.
						if bodies, err := st.inv.Payloads(ServiceBusBinding); err == nil {
							attrs = append(attrs, slog.Int("messages", len(bodies)))
							if mds, err := st.inv.ServiceBusBatch(len(bodies)); err == nil {
								n := 0
								for _, m := range mds {
									n = max(n, m.DeliveryCount)
								}
								attrs = append(attrs, slog.Int("deliveryCount", n))
							}
						}
					} else if n, derr := st.inv.metaInt("DeliveryCount"); derr == nil {
						attrs = append(attrs, slog.Int("deliveryCount", n))
					}
				}
				level := slog.LevelInfo
				switch {
				case st.quiet && res.Status >= 200 && res.Status < 300:
					level = slog.LevelDebug
				case res.Status >= 500 || res.Status < 200:
					level = slog.LevelError
				case res.Status >= 300:
					level = slog.LevelWarn
				}
				if st.err != nil {
					attrs = append(attrs, slog.String("error", st.err.Error()))
				}
				logger.LogAttrs(c.Request().Context(), level, "invocation", attrs...)
			})
			defer func() {
				if p := recover(); p != nil {
					st.err = fmt.Errorf("panic: %v", p)
					panic(p)
				}
			}()
			err = next(c)
			if err != nil && st.err == nil {
				st.err = err
			}
			return err
		}
	}
}

// LoopbackOnly is middleware for the invocation routes (pass it to Mount): it refuses, with 403
// problem code invocation-forbidden, an invocation whose peer is not a loopback address or that
// came through a proxy (X-Forwarded-For, Forwarded or X-Real-IP: a reverse proxy on the same
// machine connects from loopback too). The Functions host calls its custom handler on 127.0.0.1,
// and the standalone scheduler and in-process transport invoke through Invoke (127.0.0.1), so only
// someone else who reaches the port is refused: in standalone mode the port is public, and an
// invocation would let its caller write any actor into any tenant's audit trail.
func LoopbackOnly() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() || proxied(r.Header) {
				return errInvocationForbidden
			}
			return next(c)
		}
	}
}

// proxied reports whether a request names a client of a proxy in front of it.
func proxied(h http.Header) bool {
	for _, k := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

var errInvocationForbidden = problem.New(http.StatusForbidden, "invocation-forbidden",
	"Function invocations are accepted only from the Functions host (loopback); see SPINE_HOST_FRONTED.")

// serveInvocation is the POST /<Name> handler of fn.
func serveInvocation(fn Function) echo.HandlerFunc {
	limit := fn.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	return func(c echo.Context) error {
		req := c.Request()
		inv, err := DecodeInvocation(req, limit)
		if err != nil {
			return err
		}
		inv.FunctionName = fn.Name
		st, _ := c.Get(logKey).(*invocationLog)
		if st != nil {
			st.inv = inv
		}
		ctx, span := startInvocationSpan(req.Context(), fn, inv)
		c.SetRequest(req.WithContext(ctx))
		res, err := fn.Handler(WithInvocation(ctx, inv), inv)
		endInvocationSpan(span, err)
		if err != nil {
			return err
		}
		if st != nil && res != nil {
			st.quiet = res.Quiet
		}
		// Marshal before writing, so an unencodable Result fails the invocation instead of
		// committing a 200 with a truncated body.
		body, err := json.Marshal(normalize(res))
		if err != nil {
			return fmt.Errorf("function %s: encode result: %w", fn.Name, err)
		}
		return c.JSONBlob(http.StatusOK, body)
	}
}

// normalize returns res with nil Outputs and Logs replaced by empty ones (never null on the wire).
func normalize(res *Result) Result {
	var out Result
	if res != nil {
		out = *res
	}
	if out.Outputs == nil {
		out.Outputs = map[string]any{}
	}
	if out.Logs == nil {
		out.Logs = []string{}
	}
	return out
}
