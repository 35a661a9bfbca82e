package httpx

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/problem"
)

// DefaultRequestTimeout bounds an API request when APIConfig.RequestTimeout is zero.
const DefaultRequestTimeout = 20 * time.Second

// Timeout gives every request on the group a deadline, so a store that stops answering (a
// database frozen mid-query, a half-open connection) costs a request at most d, never a hang
// until the client gives up; what is still waiting then fails with context.DeadlineExceeded,
// answered as 503 timeout (MapError).
func Timeout(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ctx, cancel := context.WithTimeout(c.Request().Context(), d)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

// timeoutProblem is the answer to a request that ran out of time.
func timeoutProblem() *problem.Problem {
	return problem.New(http.StatusServiceUnavailable, "timeout",
		"The request did not complete in the time the server allows; retry later.").WithHeader("Retry-After", "1")
}
