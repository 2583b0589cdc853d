package proxy

import (
	"context"
	"net/http"
	"reflect"
	"testing"
)

// fillExported sets every exported field of *r to a non-zero value of its
// type, and returns their names.
func fillExported(t *testing.T, r *http.Request) []string {
	t.Helper()
	v := reflect.ValueOf(r).Elem()
	var names []string
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		names = append(names, sf.Name)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x-" + sf.Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(7)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		case reflect.Chan:
			f.Set(reflect.MakeChan(reflect.ChanOf(reflect.BothDir, f.Type().Elem()), 0).Convert(f.Type()))
		case reflect.Func:
			f.Set(reflect.MakeFunc(f.Type(), func([]reflect.Value) []reflect.Value { return nil }))
		case reflect.Interface:
			f.Set(reflect.ValueOf(http.NoBody))
		default:
			t.Fatalf("http.Request.%s is a %s: teach fillExported to fill it", sf.Name, f.Kind())
		}
	}
	return names
}

// same reports whether a and b hold the same value: the same pointer,
// map, slice, channel or func, or equal values.
func same(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func:
		return a.Pointer() == b.Pointer()
	}
	return a.Equal(b)
}

// An attempt's request is its client request with the request's context,
// as r.WithContext would make it: every exported field of http.Request
// copied. It fails when a Go release adds one that copyRequestFields
// leaves out.
func TestCopyRequestFieldsCopiesEveryField(t *testing.T) {
	t.Parallel()
	type key struct{}
	r := (&http.Request{}).WithContext(context.WithValue(context.Background(), key{}, "client"))
	names := fillExported(t, r)

	st := &requestState{}
	st.ctx.init(r.Context(), &st.ex)
	defer st.cancel(nil)
	for round := range 2 { // the second reuses st's request
		out := st.attemptOf(r)
		if out == r {
			t.Fatal("attemptOf returned the client's request")
		}
		if out.Context() != &st.ctx {
			t.Fatalf("round %d: the attempt's context is %T, want the request's exchange context", round, out.Context())
		}
		want, got := reflect.ValueOf(r).Elem(), reflect.ValueOf(out).Elem()
		for _, n := range names {
			if !same(want.FieldByName(n), got.FieldByName(n)) {
				t.Errorf("round %d: http.Request.%s not copied to the attempt", round, n)
			}
		}
		if exchangeOf(out.Context()) != &st.ex {
			t.Fatalf("round %d: the attempt's context does not find the exchange", round)
		}
	}
}
