package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// DefaultMaxFetchBytes is Options.MaxFetchBytes's default: 1 GiB, far above
// a config repository's whole history.
const DefaultMaxFetchBytes = 1 << 30

// go-git reads what an HTTP(S) Git server sends (the refs listing, a
// fetch's pack) to its end, keeping the listing in memory and the pack on
// disk, with no bound of its own: a broken or hostile server streaming
// without end fills the agent's memory or disk within the timeout. Its HTTP
// transports are replaced by ones whose response bodies fail past the cap
// that the Source puts in the request's context (capContext); a request
// without one (not the Source's) is not capped.
func init() {
	for _, scheme := range []string{"http", "https"} {
		client.InstallProtocol(scheme, githttp.NewClient(&http.Client{Transport: cappedTransport{http.DefaultTransport}}))
	}
}

// capKey is the context key of a request's response cap, in bytes.
type capKey struct{}

// capContext returns ctx carrying the cap on each HTTP response; n <= 0
// leaves ctx as it is.
func capContext(ctx context.Context, n int64) context.Context {
	if n <= 0 {
		return ctx
	}
	return context.WithValue(ctx, capKey{}, n)
}

// ErrFetchTooLarge is the error of a read past the cap: the server sent
// more than Options.MaxFetchBytes in one response.
var ErrFetchTooLarge = errors.New("the Git server's response exceeds the fetch size cap (--git-max-fetch-bytes)")

// cappedTransport caps the body of every response to a request whose
// context carries a cap.
type cappedTransport struct{ base http.RoundTripper }

func (t cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if n, ok := req.Context().Value(capKey{}).(int64); ok && n > 0 {
		res.Body = cappedBody{http.MaxBytesReader(nil, res.Body, n)}
	}
	return res, nil
}

// cappedBody is an http.MaxBytesReader whose error past the cap is
// ErrFetchTooLarge, naming the flag that sets it.
type cappedBody struct{ io.ReadCloser }

func (b cappedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if tooLarge, ok := errors.AsType[*http.MaxBytesError](err); ok {
		err = fmt.Errorf("%w: more than %d bytes", ErrFetchTooLarge, tooLarge.Limit)
	}
	return n, err
}
