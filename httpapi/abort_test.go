package httpapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/httpapi"
)

// closingKV fails the way database/sql does when the request's context ends inside a
// statement: with its own words, not context.Canceled.
type closingKV struct {
	keeper.KVStore
}

func (closingKV) Create(ctx context.Context, _ []keeper.Entry) ([]keeper.Entry, error) {
	<-ctx.Done()
	return nil, errors.New("kv create: sql: statement is closed")
}

// TestClientAbortInTheDriversWords checks that a failure of an abandoned request is
// logged as the client's abort even when the driver does not say context.Canceled.
func TestClientAbortInTheDriversWords(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) { o.KV = closingKV{KVStore: o.KV} })
	id := e.abandon(req{method: "POST", path: "/api/result", body: `{"a":"1"}`},
		100*time.Millisecond)
	checkClientClosed(t, e, id)
}
