package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// clockTicks is USER_HZ, 100 on every Linux the bench runs on.
const clockTicks = 100

// operatorProc is an operator process the bench started, with its
// metrics endpoint.
type operatorProc struct {
	*framework.Operator
	metricsURL string
	heapURL    string
}

// liveHeap is the operator's heap after a forced garbage collection (the
// heap profile endpoint runs one first), in bytes: what its caches and
// bookkeeping hold, without the garbage that heap-in-use and RSS include
// until the collector runs.
func (p *operatorProc) liveHeap(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.heapURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", p.heapURL, resp.Status)
	}
	m, err := scrape(ctx, p.metricsURL)
	if err != nil {
		return 0, err
	}
	return m["go_memstats_heap_alloc_bytes"], nil
}

func startOperator(ctx context.Context, cp *framework.ControlPlane, logPath string, metricsPort int, args []string) (*operatorProc, error) {
	// --profiling lets liveHeap force a garbage collection.
	full := append([]string{fmt.Sprintf("--metrics-addr=127.0.0.1:%d", metricsPort), "--v=1", "--profiling"}, args...)
	op, err := cp.StartOperatorLogging(logPath, full...)
	if err != nil {
		return nil, err
	}
	p := &operatorProc{Operator: op, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		heapURL: fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", metricsPort)}
	// Wait for /metrics to answer (the operator is up and past discovery).
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := scrape(ctx, p.metricsURL); err == nil {
			return p, nil
		}
		if exited, err := op.Exited(); exited {
			return nil, fmt.Errorf("operator exited at start (see %s): %w", logPath, err)
		}
		if time.Now().After(deadline) {
			_ = op.Stop()
			return nil, fmt.Errorf("operator /metrics not up within 60s; see %s", logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *operatorProc) pid() int { return p.PID() }

func (p *operatorProc) stop() { _ = p.Stop() }

// cpuSeconds is utime+stime of pid.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	// After ')': state(3) ppid(4) ... utime is field 14, stime 15 (1-based).
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// memKiB returns VmRSS and VmHWM of pid in KiB.
func memKiB(pid int) (rss, hwm float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []string{"VmRSS:", "VmHWM:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				if k == "VmRSS:" {
					rss = n
				} else {
					hwm = n
				}
			}
		}
	}
	return rss, hwm
}

// cpuSampler records the highest CPU use (in cores) of pid over any
// interval of its period.
type cpuSampler struct {
	mu   sync.Mutex
	peak float64
	stop chan struct{}
	done chan struct{}
}

func sampleCPU(pid int, period time.Duration) *cpuSampler {
	s := &cpuSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		last, lastT := cpuSeconds(pid), time.Now()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			cur, now := cpuSeconds(pid), time.Now()
			if use := (cur - last) / now.Sub(lastT).Seconds(); use > 0 {
				s.mu.Lock()
				s.peak = max(s.peak, use)
				s.mu.Unlock()
			}
			last, lastT = cur, now
		}
	}()
	return s
}

func (s *cpuSampler) finish() float64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// metrics is one scrape of the operator's /metrics.
type metrics = framework.Metrics

func scrape(ctx context.Context, url string) (metrics, error) {
	return framework.ScrapeMetrics(ctx, url)
}

// label returns the value of key in a series name such as
// `name{a="x",key="y"}`.
func label(series, key string) string {
	i := strings.Index(series, "{"+key+`="`)
	if i < 0 {
		i = strings.Index(series, ","+key+`="`)
	}
	if i < 0 {
		return ""
	}
	rest := series[i+len(key)+3:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

func metricName(series string) string {
	if i := strings.IndexByte(series, '{'); i >= 0 {
		return series[:i]
	}
	return series
}

// requestsByVerb is the change of client-go's rest_client_requests_total
// between two scrapes, summed by method.
func requestsByVerb(before, after metrics) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if metricName(k) != "rest_client_requests_total" {
			continue
		}
		if d := v - before[k]; d > 0 {
			out[label(k, "method")] += d
		}
	}
	return out
}

func formatVerbs(m map[string]float64) (total float64, s string) {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		total += m[k]
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return total, strings.Join(parts, ", ")
}

// maxQueueWait is, from the change of workqueue_queue_duration_seconds
// between two scrapes, the smallest bucket bound that holds every item that
// was taken from the named queues: an upper bound of the longest wait in the
// queue (after an AddAfter timer fired, or after an Add). Beyond the last
// finite bucket it is 1e18 (see queueBound).
func maxQueueWait(before, after metrics, queues ...string) (bound float64, items float64) {
	h := histogramDelta(before, after, "workqueue_queue_duration_seconds", "name", queues...)
	bound = h.quantile(1)
	if math.IsInf(bound, 1) {
		bound = 1e18
	}
	return bound, h.total
}

// histogram is the change of a Prometheus histogram between two scrapes,
// summed over the series whose label key has one of the given values (the
// series share their buckets): cumulative counts by upper bound.
type histogram struct {
	bounds []float64 // ascending; the last is +Inf
	counts []float64 // cumulative, per bound
	total  float64
}

func histogramDelta(before, after metrics, name, key string, values ...string) histogram {
	cum := map[float64]float64{}
	var h histogram
	for k, v := range after {
		if !containsStr(values, label(k, key)) {
			continue
		}
		switch metricName(k) {
		case name + "_bucket":
			// ParseFloat reads "+Inf" as +Inf.
			if le, err := strconv.ParseFloat(label(k, "le"), 64); err == nil {
				cum[le] += v - before[k]
			}
		case name + "_count":
			h.total += v - before[k]
		}
	}
	for le := range cum {
		h.bounds = append(h.bounds, le)
	}
	sort.Float64s(h.bounds)
	for _, le := range h.bounds {
		h.counts = append(h.counts, cum[le])
	}
	return h
}

// quantile is the smallest bucket bound that holds the fraction q of the
// observations (q = 1: all of them), +Inf if only the +Inf bucket does, and
// 0 without observations.
func (h histogram) quantile(q float64) float64 {
	if h.total <= 0 {
		return 0
	}
	for i, le := range h.bounds {
		if h.counts[i] >= q*h.total-1e-9 {
			return le
		}
	}
	return math.Inf(1)
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1)*p + 0.5)
	return sorted[min(i, len(sorted)-1)]
}

// childrenCPU is the CPU time of this process's direct children except
// skip: etcd, kube-apiserver and kube-controller-manager.
func childrenCPU(skip int) float64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	var total float64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == skip {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == self {
			total += cpuSeconds(pid)
		}
	}
	return total
}
