package load

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/schemas"
)

// configExt reports whether name has an extension the loader reads.
func configExt(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json", ".cue":
		return true
	}
	return false
}

// CUEFiles returns the paths, sorted, of the files among files that Files
// evaluates as CUE code (*.cue, outside hidden directories). Only these can
// make an evaluation cost more than its input's size: YAML and JSON are
// data, bounded by the byte limits and the alias pre-scan.
func CUEFiles(files []File) []string {
	var out []string
	for _, f := range selectFiles(files) {
		if strings.EqualFold(path.Ext(f.Path), ".cue") {
			out = append(out, f.Path)
		}
	}
	return out
}

// hidden reports whether any element of the slash-separated path p starts
// with a dot (".github/workflows/ci.yml", ".cache/x.yaml"). Hidden files and
// directories are never config, so a config path that is the repository root
// does not read CI workflows.
func hidden(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if strings.HasPrefix(el, ".") && el != "." && el != ".." {
			return true
		}
	}
	return false
}

// Dir reads the config files of dir with ReadDir and validates them with
// Files. The error is non-nil only when dir cannot be read at all;
// everything a user can fix is a diagnostic.
func Dir(dir string, lim Limits) (Result, error) {
	files, diags, err := ReadDir(dir, lim)
	if err != nil || len(diags) > 0 {
		return Result{Diagnostics: diags}, err
	}
	return Files(files, lim), nil
}

// ReadDir reads the config files (*.yaml, *.yml, *.json, *.cue, at any
// depth, hidden files and directories skipped) of dir without validating
// them. A symlink, a file that is not regular, a file over lim.MaxFileBytes
// or a total over lim.MaxTotalBytes is refused with a diagnostic naming it,
// without reading it; files come back only when there is no diagnostic. The
// error is non-nil only when dir cannot be read at all.
func ReadDir(dir string, lim Limits) ([]File, []schemas.Diagnostic, error) {
	lim = lim.withDefaults()
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config directory: %w", err)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("reading config directory: %s is not a directory", dir)
	}
	var (
		files []File
		diags []schemas.Diagnostic
		total int64
	)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walking %s: %w", p, err)
		}
		rel, rerr := filepath.Rel(dir, p)
		if rerr != nil {
			return fmt.Errorf("walking %s: %w", p, rerr)
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if hidden(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		// WalkDir reports the type from Lstat and never follows links.
		if d.Type()&fs.ModeSymlink != 0 {
			// The target is not named: it may be outside the repository.
			diags = append(diags, schemas.Diagnostic{File: rel, Message: "symbolic link refused: config files must be regular files inside the config directory"})
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !configExt(rel) {
			return nil
		}
		if !d.Type().IsRegular() {
			diags = append(diags, schemas.Diagnostic{File: rel, Message: "not a regular file: refused"})
			return nil
		}
		info, ierr := d.Info()
		if ierr != nil {
			return fmt.Errorf("reading %s: %w", p, ierr)
		}
		if info.Size() > lim.MaxFileBytes {
			diags = append(diags, tooBig(rel, info.Size(), lim.MaxFileBytes))
			return nil
		}
		if total+info.Size() > lim.MaxTotalBytes {
			diags = append(diags, totalTooBig(rel, lim.MaxTotalBytes))
			return filepath.SkipAll
		}
		data, rerr := readBounded(p, lim.MaxFileBytes)
		if rerr != nil {
			if errors.Is(rerr, errTooBig) {
				diags = append(diags, tooBig(rel, lim.MaxFileBytes+1, lim.MaxFileBytes))
				return nil
			}
			return rerr
		}
		total += int64(len(data))
		files = append(files, File{Path: rel, Data: data})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading config directory %s: %w", dir, err)
	}
	if len(diags) > 0 {
		sortDiagnostics(diags)
		return nil, diags, nil
	}
	return files, nil, nil
}

var errTooBig = errors.New("file grew past the size limit while read")

// readBounded reads at most max bytes of the file at p; a file that grew
// past max since it was stat'ed fails with errTooBig.
func readBounded(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if int64(len(data)) > max {
		return nil, errTooBig
	}
	return data, nil
}

func tooBig(file string, size, max int64) schemas.Diagnostic {
	return schemas.Diagnostic{File: file, Message: fmt.Sprintf(
		"file is %d bytes, over the limit of %d bytes per file: split it", size, max)}
}

func totalTooBig(file string, max int64) schemas.Diagnostic {
	return schemas.Diagnostic{File: file, Message: fmt.Sprintf(
		"config files total more than %d bytes when this file is added: refused", max)}
}

// sortDiagnostics orders diags by file, line, column, path and message.
func sortDiagnostics(diags []schemas.Diagnostic) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i], diags[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Message < b.Message
	})
}
