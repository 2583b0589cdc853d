package secretref

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withNewline := write("nl", "v4lue\r\n")
	empty := write("empty", "\n")
	src := Source{LookupEnv: func(k string) (string, bool) {
		v, ok := map[string]string{"SET": "v4lue", "EMPTY": ""}[k]
		return v, ok
	}}
	cases := []struct {
		name    string
		ref     *schemas.SecretRef
		want    string
		wantErr string
	}{
		{"env", &schemas.SecretRef{Env: "SET"}, "v4lue", ""},
		{"env unset", &schemas.SecretRef{Env: "UNSET"}, "", "env UNSET is not set"},
		{"env empty", &schemas.SecretRef{Env: "EMPTY"}, "", "env EMPTY is empty"},
		{"file without its trailing newline", &schemas.SecretRef{File: withNewline}, "v4lue", ""},
		{"file empty", &schemas.SecretRef{File: empty}, "", "file " + empty + " is empty"},
		{"file missing", &schemas.SecretRef{File: filepath.Join(dir, "absent")}, "", "reading file " + filepath.Join(dir, "absent")},
		{"both", &schemas.SecretRef{Env: "SET", File: withNewline}, "", "exactly one of env or file"},
		{"nil", nil, "", "exactly one of env or file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := src.Resolve(tc.ref)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "v4lue") {
					t.Fatalf("error repeats the value: %v", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
