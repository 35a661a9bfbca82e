package kit

import (
	"context"

	"github.com/labstack/echo/v4"

	"spine/shared/functions"
	"spine/shared/problem"
)

type nopService struct{}

func (nopService) Routes(*echo.Group)                     {}
func (nopService) Functions(Catalog) []functions.Function { return nil }
func (nopService) MapError(error) *problem.Problem        { return nil }
func newNop(context.Context, Deps) (Service, error)       { return nopService{}, nil }
