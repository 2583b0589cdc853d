package schemas

import (
	"encoding/json"
	"testing"
)

// TestCacheKeyQueryRoundTrip: an empty key.query (no query in the key)
// and an absent one (the whole query) stay apart in a bundle's JSON.
func TestCacheKeyQueryRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      CacheKey
		wantNil bool
	}{
		{"absent", CacheKey{}, true},
		{"empty", CacheKey{Query: []string{}}, false},
		{"listed", CacheKey{Query: []string{"page"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var out CacheKey
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			if (out.Query == nil) != tt.wantNil || len(out.Query) != len(tt.in.Query) {
				t.Errorf("%s -> %#v", b, out.Query)
			}
		})
	}
}
