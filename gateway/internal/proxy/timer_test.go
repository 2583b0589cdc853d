package proxy

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A released timer that is armed again cancels only its new request.
func TestRouteTimerReuse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		release bool // release the first arming before it fires
	}{
		{name: "released then rearmed", release: true},
		{name: "fired then dropped", release: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx1, cancel1 := context.WithCancelCause(context.Background())
			defer cancel1(nil)
			st1 := &requestState{cancel: cancel1}
			d1 := time.Hour
			if !tc.release {
				d1 = time.Millisecond
			}
			tm := armRouteTimer(st1, d1)
			if !tc.release {
				<-ctx1.Done()
			}
			tm.release()

			ctx2, cancel2 := context.WithCancelCause(context.Background())
			defer cancel2(nil)
			tm2 := armRouteTimer(&requestState{cancel: cancel2}, time.Millisecond)
			<-ctx2.Done()
			tm2.release()
			if got := context.Cause(ctx2); !errors.Is(got, errRouteTimeout) {
				t.Fatalf("second request's cause %v, want the route timeout", got)
			}
			if tc.release && ctx1.Err() != nil {
				t.Fatalf("released first request was cancelled: %v", context.Cause(ctx1))
			}
		})
	}
}
