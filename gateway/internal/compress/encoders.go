package compress

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/gitgate/gitgate/schemas"
)

// encoder is a pooled stream compressor.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// zstdWindow is the zstd window: RFC 9659 asks HTTP senders to stay
// within 8 MiB so that browsers can decode; a smaller one also keeps each
// pooled encoder small.
const zstdWindow = 1 << 20

// pool hands out encoders of one algorithm and level.
type pool struct {
	name string
	cost int64 // the memory of one encoder in use, measured (see encoderCost)
	p    sync.Pool
	make func() (encoder, error)
}

// encoderCost is the heap of one encoder in use after a 128 KiB body,
// measured with klauspost/compress 1.18 (rounded up): what a response
// holds of the Budget while it is compressed.
var encoderCost = map[string]int64{
	schemas.CompressGzip + "/" + schemas.CompressFastest: 832 << 10,
	schemas.CompressGzip + "/" + schemas.CompressDefault: 1088 << 10,
	schemas.CompressGzip + "/" + schemas.CompressBest:    1408 << 10,
	schemas.CompressZstd + "/" + schemas.CompressFastest: 2752 << 10,
	schemas.CompressZstd + "/" + schemas.CompressDefault: 3840 << 10,
	schemas.CompressZstd + "/" + schemas.CompressBest:    6720 << 10,
}

// pools are shared by every route: one per algorithm and level.
var (
	poolsMu sync.Mutex
	pools   = map[string]*pool{}
)

// poolFor returns the shared pool of alg at level, after building one
// encoder to prove the settings.
func poolFor(alg, level string) (*pool, error) {
	key := alg + "/" + level
	poolsMu.Lock()
	defer poolsMu.Unlock()
	if p := pools[key]; p != nil {
		return p, nil
	}
	p := &pool{name: alg, cost: encoderCost[key]}
	if p.cost == 0 {
		p.cost = 8 << 20 // a level not measured: the most
	}
	switch alg {
	case schemas.CompressGzip:
		l := gzip.DefaultCompression
		switch level {
		case schemas.CompressFastest:
			l = gzip.BestSpeed
		case schemas.CompressBest:
			l = gzip.BestCompression
		}
		p.make = func() (encoder, error) { return gzip.NewWriterLevel(io.Discard, l) }
	case schemas.CompressZstd:
		l := zstd.SpeedDefault
		switch level {
		case schemas.CompressFastest:
			l = zstd.SpeedFastest
		case schemas.CompressBest:
			l = zstd.SpeedBetterCompression
		}
		p.make = func() (encoder, error) {
			// Concurrency 1: the encoder then encodes and writes on the
			// caller's goroutine (zstd's synchronous path), so the
			// ResponseWriter is never written from another goroutine, and
			// a proxy compresses many small streams at once, not one
			// large one.
			return zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow))
		}
	default:
		return nil, fmt.Errorf("compression algorithm %q: not zstd or gzip", alg)
	}
	e, err := p.make()
	if err != nil {
		return nil, fmt.Errorf("building a %s encoder at level %s: %w", alg, level, err)
	}
	p.p.Put(e)
	pools[key] = p
	return p, nil
}

// get returns an encoder writing to w.
func (p *pool) get(w io.Writer) encoder {
	e, _ := p.p.Get().(encoder)
	if e == nil {
		var err error
		if e, err = p.make(); err != nil {
			panic(err) // the same settings built one in poolFor
		}
	}
	e.Reset(w)
	return e
}

// put returns a closed encoder, dropping its writer.
func (p *pool) put(e encoder) {
	e.Reset(nil)
	p.p.Put(e)
}
