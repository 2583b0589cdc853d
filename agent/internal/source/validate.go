package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
)

// FileReader reads the config files at a revision: every Source does, and
// so does a local repository that `agent diff` reads.
type FileReader interface {
	Files(ctx context.Context, rev, dir string, lim load.Limits) ([]load.File, error)
}

// Validator validates config files; *budget.Evaluator implements it,
// evaluating CUE files under a time and memory budget. A problem a user must
// fix is a diagnostic of the result; the error is for failures worth a
// retry.
type Validator interface {
	Files(ctx context.Context, files []load.File, lim load.Limits) (load.Result, error)
}

// Validate reads the config directory dir at rev from r and validates it
// with v (nil: load.FilesContext in this process, with no bound on CUE
// but ctx). Problems a
// user must fix, in the source's layout or in the config, are the
// diagnostics of the result, file names relative to dir; a result without
// diagnostics has a Config. The error is for failures worth a retry.
func Validate(ctx context.Context, r FileReader, rev, dir string, v Validator, lim load.Limits) (load.Result, error) {
	files, err := r.Files(ctx, rev, dir, lim)
	if err != nil {
		var inv *schemas.InvalidError
		if errors.As(err, &inv) {
			return load.Result{Diagnostics: inv.Diagnostics}, nil
		}
		return load.Result{}, err
	}
	var res load.Result
	if v == nil {
		res, err = load.FilesContext(ctx, files, lim)
	} else {
		res, err = v.Files(ctx, files, lim)
	}
	if err != nil {
		return load.Result{}, fmt.Errorf("validating %s: %w", Short(rev), err)
	}
	if len(res.Diagnostics) == 0 && res.Config == nil {
		res.Diagnostics = []schemas.Diagnostic{{Message: "the loader returned no config"}}
	}
	return res, nil
}

// Short abbreviates a revision for messages: its first 12 characters (a
// Git SHA's customary prefix), or all of a shorter one.
func Short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
