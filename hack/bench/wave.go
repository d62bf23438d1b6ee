package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// delayMetric is the operator's histogram of how late scheduled rotations
// start: from the due moment to the sync that performs the rotation.
const delayMetric = "image_registry_operator_rotation_delay_seconds"

// wave follows the scheduled rotations that the manual sweep implies: the
// sweep set every object's status.rotationDate to the moment of its
// rotation, so each object falls due again at that moment + interval +
// its jitter, and the operator's AddAfter timers start the rotations with
// the sweep's spread plus the jitter's. It waits until every object's
// status.rotation has gone past the one the sweep left, and reports the
// operator's delay histogram, the workqueue wait, CPU and API requests.
func (b *bench) wave(ctx context.Context, n int, op *operatorProc, w *watcher, sr *scaleResult) error {
	interval := b.cfg.rotationInterval

	// Due moments as the operator published them (status.nextRotationDate)
	// in the status the sweep wrote; span is the largest jitter among them.
	w.mu.Lock()
	uids := make([]types.UID, 0, len(w.swept))
	due := make(map[types.UID]time.Time, len(w.swept))
	var firstDue, lastDue time.Time
	var span time.Duration
	for uid, s := range w.swept {
		if s.due.IsZero() {
			w.mu.Unlock()
			return fmt.Errorf("object %s has no status.nextRotationDate after the sweep", uid)
		}
		uids = append(uids, uid)
		d := s.due
		span = max(span, d.Sub(s.rotationDate)-interval)
		due[uid] = d
		if firstDue.IsZero() || d.Before(firstDue) {
			firstDue = d
		}
		if d.After(lastDue) {
			lastDue = d
		}
	}
	w.mu.Unlock()
	deadline := time.Now().Add(interval + span + b.cfg.readyTimeout)
	if len(uids) != 2*n {
		return fmt.Errorf("the sweep left %d objects, want %d", len(uids), 2*n)
	}
	// The baseline is taken just before the first rotation is due, so that
	// CPU, requests and queue waits are those of the wave (the sweep's
	// grace-period ends are over by then unless the interval is short).
	start := firstDue.Add(-5 * time.Second)
	logf("N=%d: scheduled wave: %d rotations due from %s to %s (interval %s, jitter below %s); waiting %s",
		n, 2*n, firstDue.Format("15:04:05"), lastDue.Format("15:04:05"), interval, span, time.Until(start).Round(time.Second))
	if err := sleepCtx(ctx, time.Until(start)); err != nil {
		return err
	}
	m0, err := scrape(ctx, op.metricsURL)
	if err != nil {
		return err
	}
	cpu0 := cpuSeconds(op.pid())
	sampler := sampleCPU(op.pid(), time.Second)
	// Scheduled rotations since the operator started: any at all means an
	// object fell due on its timer during the Ready phase or the sweep.
	sr.waveScheduledBefore = delayHistogram(nil, m0).total
	w.mu.Lock()
	w.waveBase = make(map[types.UID]int64, len(uids))
	for _, uid := range uids {
		base := w.swept[uid].rotation
		w.waveBase[uid] = base
		if l := w.last[uid]; l.rotation > base {
			// Rotated on schedule before the baseline: the interval is too
			// short for this N. It still counts, at the time it was seen.
			w.waveAt[uid] = l.seen
			w.waveN.Add(1)
			sr.waveEarly++
		}
		if w.last[uid].hashes > 2 {
			sr.waveInGrace++
		}
	}
	w.mu.Unlock()
	if sr.waveScheduledBefore > 0 || sr.waveEarly > 0 {
		logf("N=%d: WARNING: %.0f scheduled rotations before the wave, %d objects already past the sweep's rotation: raise --rotation-interval",
			n, sr.waveScheduledBefore, sr.waveEarly)
	}
	if err := waitCount(ctx, &w.waveN, int64(2*n), time.Until(deadline)); err != nil {
		sampler.finish()
		return fmt.Errorf("only %d of %d rotated on schedule by %s (last due %s)", w.waveN.Load(), 2*n,
			deadline.Format("15:04:05"), lastDue.Format("15:04:05"))
	}
	// The watch sees a rotation's first write (the status with the new
	// hash); the operator records the delay after the Secret write that
	// follows. Wait briefly for the last observations.
	var m1 metrics
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_ = wait.PollUntilContextCancel(pctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		m, err := scrape(ctx, op.metricsURL)
		if err != nil {
			return false, nil
		}
		m1 = m
		return delayHistogram(m0, m1).total >= float64(2*n), nil
	})
	cancel()
	sr.wavePeakCPU = sampler.finish()
	sr.waveCPU = cpuSeconds(op.pid()) - cpu0
	if m1 == nil {
		return errors.New("operator /metrics did not answer after the wave")
	}

	w.mu.Lock()
	var first, last time.Time
	lags := make([]time.Duration, 0, len(uids))
	for _, uid := range uids {
		t := w.waveAt[uid]
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
		lags = append(lags, t.Sub(due[uid]))
	}
	w.mu.Unlock()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	sr.waveDone = true
	sr.waveSpread = last.Sub(first)
	sr.waveDueSpread = lastDue.Sub(firstDue)
	sr.waveJitterSpan = span
	sr.waveLagP50, sr.waveLagP99, sr.waveLagMax = percentile(lags, 0.5), percentile(lags, 0.99), lags[len(lags)-1]
	h := delayHistogram(m0, m1)
	sr.waveHistogram = m1.HasMetric(delayMetric + "_bucket")
	sr.waveObservations = h.total
	sr.waveDelayP50, sr.waveDelayP99, sr.waveDelayMax = h.quantile(0.5), h.quantile(0.99), h.quantile(1)
	sr.waveQueueWait, _ = maxQueueWait(m0, m1, "imagepushsecrets", "imagepullsecrets")
	sr.waveRequests, sr.waveRequestsByVerb = formatVerbs(requestsByVerb(m0, m1))
	logf("N=%d: scheduled wave: %d rotations over %s (due over %s), delay p50 %s p99 %s max %s (%.0f observations), seen by the watch max %s after due, peak CPU %.2f cores, %.0f requests, queue wait %s",
		n, 2*n, sr.waveSpread.Round(time.Millisecond), sr.waveDueSpread.Round(time.Millisecond), delayBound(sr.waveDelayP50), delayBound(sr.waveDelayP99),
		delayBound(sr.waveDelayMax), sr.waveObservations, sr.waveLagMax.Round(time.Millisecond), sr.wavePeakCPU, sr.waveRequests, queueBound(sr.waveQueueWait))
	return nil
}

// delayHistogram is the change of the operator's rotation delay histogram
// (push and pull together) between two scrapes; before may be nil.
func delayHistogram(before, after metrics) histogram {
	return histogramDelta(before, after, delayMetric, "kind", "push", "pull")
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// delayBound prints a rotation_delay_seconds bucket bound.
func delayBound(b float64) string {
	if math.IsInf(b, 1) {
		return "> 3600s"
	}
	return fmt.Sprintf("<= %gs", b)
}
