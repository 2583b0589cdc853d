package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-git/go-git/v5/storage/filesystem"
)

// cappedStorage is the clone's storage with every pack that a fetch writes
// into it capped at max bytes (max <= 0: no cap). It caps what the HTTP
// transports' cap (cappedTransport) cannot see: a pack that an SSH server,
// or git-upload-pack for a local path, streams without end, which go-git
// writes to disk until the fetch times out. Embedding the concrete storage
// keeps every optional interface go-git looks for.
type cappedStorage struct {
	*filesystem.Storage
	max int64

	mu     sync.Mutex
	cancel context.CancelCauseFunc // of the fetch in progress (arm)
}

// arm makes a pack past the cap end the fetch whose context cancel ends,
// until the returned disarm is called.
func (s *cappedStorage) arm(cancel context.CancelCauseFunc) (disarm func()) {
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.cancel = nil
		s.mu.Unlock()
	}
}

// PackfileWriter is the storage's pack writer, cut off at the cap.
func (s *cappedStorage) PackfileWriter() (io.WriteCloser, error) {
	w, err := s.Storage.PackfileWriter()
	if err != nil || s.max <= 0 {
		return w, err
	}
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	return &cappedPackWriter{WriteCloser: w, left: s.max, max: s.max, cancel: cancel}, nil
}

// cappedPackWriter stops writing the pack at max bytes. Past it, it ends
// the fetch's context with ErrFetchTooLarge and takes what still comes
// without writing it, instead of failing the write: go-git would then stop
// reading and wait for the server to finish, and git-upload-pack for a
// local path, blocked writing the rest of the pack into a pipe nobody
// reads, never would. With the context ended, go-git's next read fails and
// it kills the command. Close reports ErrFetchTooLarge; go-git abandons the
// truncated pack, whose temp file is swept after the failed fetch
// (removeTempFiles).
type cappedPackWriter struct {
	io.WriteCloser
	left, max int64
	cancel    context.CancelCauseFunc // nil: none armed
	over      bool
}

func (w *cappedPackWriter) Write(p []byte) (int, error) {
	if w.over {
		return len(p), nil
	}
	if int64(len(p)) > w.left {
		w.over = true
		if w.cancel != nil {
			w.cancel(w.err())
		}
		return len(p), nil
	}
	w.left -= int64(len(p))
	return w.WriteCloser.Write(p)
}

func (w *cappedPackWriter) Close() error {
	err := w.WriteCloser.Close()
	if w.over {
		return w.err()
	}
	return err
}

func (w *cappedPackWriter) err() error {
	return fmt.Errorf("%w: a pack of more than %d bytes", ErrFetchTooLarge, w.max)
}

// fetchContext returns ctx for one fetch into s's storage, ended when a
// pack passes the cap, and done, which the fetch's error goes through:
// it turns the error of a fetch that the cap ended into ErrFetchTooLarge,
// and releases the context.
func (s *Source) fetchContext(ctx context.Context) (context.Context, func(error) error) {
	ctx, cancel := context.WithCancelCause(ctx)
	disarm := func() {}
	if s.capped != nil {
		disarm = s.capped.arm(cancel)
	}
	return ctx, func(err error) error {
		disarm()
		if cause := context.Cause(ctx); err != nil && cause != nil && errors.Is(cause, ErrFetchTooLarge) {
			err = cause
		}
		cancel(nil)
		return err
	}
}
