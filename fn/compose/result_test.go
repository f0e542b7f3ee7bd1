package compose

import (
	"testing"
	"time"
)

func TestBreakerTTL(t *testing.T) {
	open := map[string]any{"status": map[string]any{"conditions": []any{map[string]any{"type": "Responsive", "status": "False", "reason": "WatchCircuitOpen"}}}}
	closed := map[string]any{"status": map[string]any{"conditions": []any{map[string]any{"type": "Responsive", "status": "True", "reason": "WatchCircuitClosed"}}}}
	cases := map[string]struct {
		reason string
		xr     map[string]any
		ttl    time.Duration
		want   time.Duration
	}{
		"ClosedIdles":      {reason: "A responsive composite keeps its TTL.", xr: closed, ttl: IdleTTL, want: IdleTTL},
		"NoCondition":      {reason: "No Responsive condition yet: as responsive.", xr: map[string]any{}, ttl: IdleTTL, want: IdleTTL},
		"OpenPolls":        {reason: "An open circuit drops its watch events: an idle composite polls instead.", xr: open, ttl: IdleTTL, want: PollTTL},
		"OpenKeepsShorter": {reason: "A shorter TTL stays.", xr: open, ttl: WaitTTL, want: WaitTTL},
		"OpenDefault":      {reason: "The default TTL (zero: the SDK's minute) is the same minute.", xr: open, ttl: 0, want: PollTTL},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := BreakerTTL(tc.xr, tc.ttl); got != tc.want {
				t.Errorf("%s\nwant %v, got %v", tc.reason, tc.want, got)
			}
		})
	}
}
