package gitsrc

import (
	"fmt"
	"io"

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
}

// PackfileWriter is the storage's pack writer, failing a write past the
// cap with ErrFetchTooLarge. go-git then abandons the pack; its temp file
// is swept after the failed fetch (removeTempFiles).
func (s *cappedStorage) PackfileWriter() (io.WriteCloser, error) {
	w, err := s.Storage.PackfileWriter()
	if err != nil || s.max <= 0 {
		return w, err
	}
	return &cappedPackWriter{WriteCloser: w, left: s.max, max: s.max}, nil
}

// cappedPackWriter refuses the write that would take a pack past max bytes.
type cappedPackWriter struct {
	io.WriteCloser
	left, max int64
}

func (w *cappedPackWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.left {
		return 0, fmt.Errorf("%w: a pack of more than %d bytes", ErrFetchTooLarge, w.max)
	}
	w.left -= int64(len(p))
	return w.WriteCloser.Write(p)
}
