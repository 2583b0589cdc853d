package diff

import (
	"reflect"
	"testing"
)

// TestSecretPathsFromTags checks that masking follows the secret tags of
// the config types, so a new policy kind's sensitive field is masked by
// its tag alone.
func TestSecretPathsFromTags(t *testing.T) {
	t.Parallel()
	type inner struct {
		Token  string            `json:"token" secret:"value"`
		Plain  string            `json:"plain"`
		Hashes map[string]string `json:"hashes,omitempty" secret:"values"`
	}
	type kinds struct {
		Newkind *inner `json:"newKind,omitempty"`
		Other   *struct {
			Name string `json:"name"`
		} `json:"other,omitempty"`
	}
	got := secretPaths(reflect.TypeFor[kinds](), nil)
	want := [][]string{{"newKind", "token"}, {"newKind", "hashes", "*"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("secretPaths = %q, want %q", got, want)
	}
	wantPolicy := [][]string{{"apiKey", "keys", "*"}, {"jwt", "jwks"}}
	if !reflect.DeepEqual(policySecrets, wantPolicy) {
		t.Fatalf("policySecrets = %q, want %q", policySecrets, wantPolicy)
	}
}
