package framework

import (
	"context"
	"fmt"
	"time"
)

// pollInterval is short because every component start sits on the critical
// path of each e2e run.
const pollInterval = 100 * time.Millisecond

// waitForProcess polls ready until it returns true, the process exits, or
// timeout passes. Errors carry the tail of the component's output, which is
// nearly always where the reason is.
func waitForProcess(ctx context.Context, p *process, timeout time.Duration, ready func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		if p.exited() {
			return fmt.Errorf("%s exited before becoming ready (%v); last output:\n%s", p.name, p.waitErr, p.tail.Lines(tailLines))
		}
		ok, err := ready(ctx)
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			reason := ctx.Err()
			if lastErr != nil {
				reason = fmt.Errorf("%w (last error: %w)", reason, lastErr)
			}
			return fmt.Errorf("%s not ready after %s: %w; last output:\n%s", p.name, timeout, reason, p.tail.Lines(tailLines))
		case <-ticker.C:
		}
	}
}
