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
		ready  bool
		want   time.Duration
	}{
		"ClosedIdles":      {reason: "A responsive composite keeps its TTL.", xr: closed, ttl: IdleTTL, ready: true, want: IdleTTL},
		"NoCondition":      {reason: "No Responsive condition yet: as responsive.", xr: map[string]any{}, ttl: IdleTTL, ready: true, want: IdleTTL},
		"OpenPolls":        {reason: "An open circuit drops its watch events: a Ready composite polls every minute instead of idling.", xr: open, ttl: IdleTTL, ready: true, want: PollTTL},
		"OpenNotReady":     {reason: "…and one not Ready yet, whose events would drive it, every 15 s.", xr: open, ttl: PollTTL, want: WaitTTL},
		"OpenKeepsShorter": {reason: "A shorter TTL stays.", xr: open, ttl: WaitTTL, ready: true, want: WaitTTL},
		"OpenDefault":      {reason: "The default TTL (zero: the SDK's minute) is the same minute.", xr: open, ttl: 0, ready: true, want: PollTTL},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := BreakerTTL(tc.xr, tc.ttl, tc.ready); got != tc.want {
				t.Errorf("%s\nwant %v, got %v", tc.reason, tc.want, got)
			}
		})
	}
}
