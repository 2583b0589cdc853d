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
			st1 := &requestState{}
			st1.ctx.init(context.Background(), &st1.ex)
			defer st1.cancel(nil)
			ctx1 := &st1.ctx
			d1 := time.Hour
			if !tc.release {
				d1 = time.Millisecond
			}
			tm := armRouteTimer(st1, d1)
			if !tc.release {
				<-ctx1.Done()
			}
			tm.release()

			st2 := &requestState{}
			st2.ctx.init(context.Background(), &st2.ex)
			defer st2.cancel(nil)
			ctx2 := &st2.ctx
			tm2 := armRouteTimer(st2, time.Millisecond)
			<-ctx2.Done()
			tm2.release()
			if got := causeOf(ctx2); !errors.Is(got, errRouteTimeout) {
				t.Fatalf("second request's cause %v, want the route timeout", got)
			}
			if tc.release && ctx1.Err() != nil {
				t.Fatalf("released first request was cancelled: %v", causeOf(ctx1))
			}
		})
	}
}
