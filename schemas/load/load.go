package load

import (
	"context"
	"runtime"
	"sort"
	"sync"

	"github.com/gitgate/gitgate/schemas"
)

// File is one input file of a config directory.
type File struct {
	// Path is slash-separated and relative to the config directory.
	Path string
	// Data is the file's content.
	Data []byte
}

// Limits bound what the loader reads.
type Limits struct {
	// MaxFileBytes per file. Default 1 MiB.
	MaxFileBytes int64
	// MaxTotalBytes over all files. Default 16 MiB.
	MaxTotalBytes int64
}

// DefaultLimits are used where a Limits field is zero.
var DefaultLimits = Limits{MaxFileBytes: 1 << 20, MaxTotalBytes: 16 << 20}

func (l Limits) withDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultLimits.MaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultLimits.MaxTotalBytes
	}
	return l
}

// Result is the outcome of loading a config: a defaulted Config when
// Diagnostics is empty.
type Result struct {
	Config      *schemas.Config
	Diagnostics []schemas.Diagnostic
}

// Err returns nil when r is valid, else a *schemas.InvalidError carrying
// every diagnostic.
func (r Result) Err() error {
	if len(r.Diagnostics) == 0 {
		return nil
	}
	return &schemas.InvalidError{Diagnostics: r.Diagnostics}
}

// Files validates a set of in-memory files, such as the tree of a commit.
// Only *.yaml, *.yml, *.json and *.cue files count; other files and any path
// with a hidden element (".github/…") are ignored. The files are unified into
// one document, validated against the CUE schema and the semantic checks,
// and decoded with defaults applied. Diagnostics are sorted by file, line
// and column. Files is safe for concurrent use.
func Files(files []File, lim Limits) Result {
	res, _ := FilesContext(context.Background(), files, lim)
	return res
}

// FilesContext is Files that stops when ctx ends, between the files it
// parses and the config entries it validates, and returns ctx's error
// then. YAML and JSON are validated in the caller's process, outside the
// budget of a child process that bounds .cue files, and the schema's
// check costs about 20 µs per list element: 16 MiB of data can take
// minutes, which a caller's deadline now bounds.
func FilesContext(ctx context.Context, files []File, lim Limits) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	lim = lim.withDefaults()
	files = selectFiles(files)
	if len(files) == 0 {
		return Result{Diagnostics: []schemas.Diagnostic{{
			Message: "no config files (*.yaml, *.yml, *.json, *.cue) found: is the config path right?"}}}, nil
	}
	var (
		diags []schemas.Diagnostic
		total int64
		keep  []File
	)
	for _, f := range files {
		size := int64(len(f.Data))
		if size > lim.MaxFileBytes {
			diags = append(diags, tooBig(f.Path, size, lim.MaxFileBytes))
			continue
		}
		if total+size > lim.MaxTotalBytes {
			diags = append(diags, totalTooBig(f.Path, lim.MaxTotalBytes))
			break
		}
		total += size
		keep = append(keep, f)
	}
	if len(diags) > 0 {
		return fail(diags), nil
	}
	defer tuneGC(total)()
	sources, diags := parseAll(keep)
	if len(diags) > 0 {
		return fail(diags), nil
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	cfg, diags, err := evaluate(ctx, sources)
	if err != nil {
		return Result{}, err
	}
	if len(diags) > 0 {
		return fail(diags), nil
	}
	return Result{Config: cfg}, nil
}

// parseAll parses files on up to GOMAXPROCS goroutines, keeping the order
// of files in the result.
func parseAll(files []File) ([]source, []schemas.Diagnostic) {
	type parsed struct {
		src   []source
		diags []schemas.Diagnostic
	}
	out := make([]parsed, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i].src, out[i].diags = parse(files[i])
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	var (
		sources []source
		diags   []schemas.Diagnostic
	)
	for _, p := range out {
		sources = append(sources, p.src...)
		diags = append(diags, p.diags...)
	}
	return sources, diags
}

func fail(diags []schemas.Diagnostic) Result {
	sortDiagnostics(diags)
	return Result{Diagnostics: diags}
}

// selectFiles keeps the config files, sorted by path so results do not
// depend on the caller's order.
func selectFiles(files []File) []File {
	out := make([]File, 0, len(files))
	for _, f := range files {
		if configExt(f.Path) && !hidden(f.Path) {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
