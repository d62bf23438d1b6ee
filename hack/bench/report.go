package main

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type scaleResult struct {
	n                      int
	load                   string
	createTime, readyTime  time.Duration
	bcryptFloor, apiFloor  time.Duration
	createsOnlyFloor       time.Duration
	cpu, peakCPU           float64
	hwm, rss               float64
	rssPerCR, heapPerCR    float64
	livePerCR              float64
	requests               float64
	requestsByVerb         string
	sweepTime, sweepSpread time.Duration
	sweepFloor             time.Duration
	sweepLagP50            time.Duration
	sweepLagP99            time.Duration
	sweepLagMax            time.Duration
	sweepCPU, sweepPeakCPU float64
	sweepRequests          float64
	queueWaitBound         float64
	cpCPU                  float64
	benchCPU               float64 // the bench process while waiting for Ready (creates, watch)
	objectBytes            string

	// The scheduled rotation wave after the sweep (wave.go).
	waveDone                           bool
	waveSpread                         time.Duration // first to last rotation seen by the watch
	waveDueSpread                      time.Duration // first to last due moment
	waveJitterSpan                     time.Duration
	waveLagP50, waveLagP99, waveLagMax time.Duration // due to the rotation's status write seen by the watch
	waveHistogram                      bool          // the operator exports the delay histogram
	waveObservations                   float64
	waveDelayP50, waveDelayP99         float64 // bucket bounds of the delay histogram; +Inf beyond the last
	waveDelayMax                       float64
	waveCPU, wavePeakCPU               float64
	waveRequests                       float64
	waveRequestsByVerb                 string
	waveQueueWait                      float64
	waveScheduledBefore                float64 // scheduled rotations before the wave's baseline
	waveEarly, waveInGrace             int

	// The ideal-client replay with no operator (replay.go).
	replayTmpl     replayTemplates
	replayTime     time.Duration // first create to last Ready seen by the watch
	replayWrites   time.Duration // first create to the last write's response
	replayCPCPU    float64       // etcd, apiserver, kcm
	replayBenchCPU float64       // the bench process: bcrypt, clients, watch
	replayLoad     string
	replayBytes    string // JSON sizes, to compare with objectBytes
}

type tokenResult struct {
	mode     string
	conc     int
	reqs     int
	p50, p99 time.Duration
	rps      float64
}

type unrelatedResult struct {
	n                   int
	rssDelta, heapDelta float64
	requests            float64
}

type results struct {
	label                  string
	operatorArgs           []string
	rotationInterval       time.Duration
	started, finished      time.Time
	loadStart, loadEnd     string
	cores, cost            int
	hashTime               time.Duration
	writeP50, writeAmort   time.Duration
	crWrite, secretWrite   time.Duration
	crStatusWrite          time.Duration
	unrelated              unrelatedResult
	scale                  []scaleResult
	token                  []tokenResult
	extAuthP50, extAuthP99 time.Duration
	dockerAuth             []dockerAuthResult
}

type row struct{ metric, n, value, note string }

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// shortDur is secs, or milliseconds below a second.
func shortDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return secs(d)
}

func (r *results) rows() []row {
	var rows []row
	add := func(metric, n, value, note string) { rows = append(rows, row{metric, n, value, note}) }
	add("bcrypt hash (one core)", "", ms(r.hashTime), fmt.Sprintf("cost %d", r.cost))
	add("API write latency", "", ms(r.writeP50), fmt.Sprintf("ConfigMap create one at a time; amortized at concurrency 32: ConfigMap %s, custom resource create %s, Secret %s, custom resource status update %s (the last three make the floor)", ms(r.writeAmort), ms(r.crWrite), ms(r.secretWrite), ms(r.crStatusWrite)))
	for _, s := range r.scale {
		n := fmt.Sprint(s.n)
		floor := s.bcryptFloor + s.apiFloor
		createsFloor := s.bcryptFloor + s.createsOnlyFloor
		add("time to Ready (2N objects)", n, secs(s.readyTime), fmt.Sprintf("floor %s (bcrypt %s + API %s): actual/floor %.2f; with every custom-resource write priced as a create: floor %s, actual/floor %.2f; created in %s; load %s",
			secs(floor), secs(s.bcryptFloor), secs(s.apiFloor), s.readyTime.Seconds()/floor.Seconds(),
			secs(createsFloor), s.readyTime.Seconds()/createsFloor.Seconds(), secs(s.createTime), s.load))
		if s.replayTime > 0 {
			add("ideal client replay (no operator)", n, secs(s.replayTime), fmt.Sprintf("floor %s: replay/floor %.2f; operator / ideal %.2f; the 32 creating goroutines make each object's 5 writes themselves, all answered after %s; CPU in the same time: control plane (etcd, apiserver, kcm) %.1fs, bench process %.1fs, i.e. %.2f of %d cores busy (operator run: control plane %.1fs, operator %.1fs, bench %.1fs, %.2f cores); JSON sizes: %s; load %s",
				secs(floor), s.replayTime.Seconds()/floor.Seconds(), s.readyTime.Seconds()/s.replayTime.Seconds(), secs(s.replayWrites),
				s.replayCPCPU, s.replayBenchCPU, (s.replayCPCPU+s.replayBenchCPU)/s.replayTime.Seconds(), cores(),
				s.cpCPU, s.cpu, s.benchCPU, (s.cpCPU+s.cpu+s.benchCPU)/s.readyTime.Seconds(), s.replayBytes, s.replayLoad))
		}
		add("operator CPU", n, fmt.Sprintf("%.1fs", s.cpu), fmt.Sprintf("peak %.2f cores; %.1f ms per object; control plane (etcd, apiserver, kcm) %.1fs in the same time, i.e. %.2f of %d cores busy with operator + control plane",
			s.peakCPU, 1000*s.cpu/float64(2*s.n), s.cpCPU, (s.cpu+s.cpCPU)/s.readyTime.Seconds(), cores()))
		add("operator API requests", n, fmt.Sprintf("%.0f", s.requests), fmt.Sprintf("%.1f per object: %s", s.requests/float64(2*s.n), s.requestsByVerb))
		add("operator RSS", n, fmt.Sprintf("%.1f MiB", s.rss/1024), fmt.Sprintf("peak (VmHWM) %.1f MiB; growth %.2f KiB per object (heap in use %.2f KiB, live heap after a forced GC %.2f KiB); JSON sizes: %s", s.hwm/1024, s.rssPerCR, s.heapPerCR, s.livePerCR, s.objectBytes))
		if s.sweepTime > 0 {
			add("rotation sweep (all 2N due at once)", n, secs(s.sweepTime), fmt.Sprintf("floor %s: actual/floor %.2f; spread of rotations %s; CPU %.1fs, peak %.2f cores; %.0f requests",
				secs(s.sweepFloor), s.sweepTime.Seconds()/s.sweepFloor.Seconds(), secs(s.sweepSpread), s.sweepCPU, s.sweepPeakCPU, s.sweepRequests))
			add("rotation wait after due", n, secs(s.sweepLagMax), fmt.Sprintf("p50 %s, p99 %s; longest workqueue wait %s", secs(s.sweepLagP50), secs(s.sweepLagP99), queueBound(s.queueWaitBound)))
		}
		if s.waveDone {
			for _, r := range waveRows(s) {
				add(r[0], n, r[1], r[2])
			}
		}
	}
	if r.unrelated.n > 0 {
		add(fmt.Sprintf("%d unrelated Secrets", r.unrelated.n), "", fmt.Sprintf("%+.0f KiB RSS", r.unrelated.rssDelta),
			fmt.Sprintf("heap in use %+.0f KiB; %.0f operator API requests", r.unrelated.heapDelta, r.unrelated.requests))
	}
	for _, t := range r.token {
		add(fmt.Sprintf("token issuance, %s cache", t.mode), fmt.Sprintf("c=%d", t.conc), "p99 "+ms(t.p99), fmt.Sprintf("p50 %s; %.0f tokens/s over %d requests", ms(t.p50), t.rps, t.reqs))
	}
	if r.extAuthP50 > 0 {
		add("ext_auth login (one process)", "", "p50 "+ms(r.extAuthP50), "p99 "+ms(r.extAuthP99))
	}
	for _, d := range r.dockerAuth {
		add(d.metric+", "+d.mode, fmt.Sprintf("c=%d", d.conc), "p99 "+ms(d.p99), fmt.Sprintf("p50 %s; %.0f/s over %d requests; %s", ms(d.p50), d.rps, d.reqs, d.note))
	}
	return rows
}

func (r *results) header() string {
	var b strings.Builder
	label := r.label
	if label == "" {
		label = "run"
	}
	fmt.Fprintf(&b, "## %s: %s\n\n", label, r.started.Format(time.RFC3339))
	interval := "the operator's default"
	if r.rotationInterval > 0 {
		interval = r.rotationInterval.String()
	}
	fmt.Fprintf(&b, "%d cores; load average %s at start, %s at end; bcrypt cost %d; rotation interval %s; operator flags: %q\n\n",
		r.cores, r.loadStart, r.loadEnd, r.cost, interval, strings.Join(r.operatorArgs, " "))
	return b.String()
}

func (r *results) markdown() string {
	var b strings.Builder
	b.WriteString(r.header())
	b.WriteString("| metric | N | value | notes |\n|---|---|---|---|\n")
	for _, rw := range r.rows() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", rw.metric, rw.n, rw.value, rw.note)
	}
	return b.String()
}

func (r *results) write(cfg config) error {
	md := r.markdown()
	fmt.Println()
	fmt.Println(md)
	suffix := ""
	if cfg.label != "" {
		suffix = "-" + cfg.label
	}
	if err := os.WriteFile(filepath.Join(cfg.outDir, "results"+suffix+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(cfg.outDir, "results"+suffix+".csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"metric", "n", "value", "notes"})
	for _, rw := range r.rows() {
		_ = w.Write([]string{rw.metric, rw.n, rw.value, rw.note})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		return err
	}
	if len(r.scale) > 0 {
		return os.WriteFile(filepath.Join(cfg.outDir, "time-to-ready"+suffix+".svg"), []byte(r.svg()), 0o644)
	}
	return nil
}

// svg plots time to Ready and the floor against N, by hand.
func (r *results) svg() string {
	const w, h, left, right, top, bottom = 640.0, 400.0, 70.0, 20.0, 40.0, 50.0
	maxN, maxT := 1.0, 1.0
	for _, s := range r.scale {
		maxN = math.Max(maxN, float64(s.n))
		maxT = math.Max(maxT, math.Max(s.readyTime.Seconds(), (s.bcryptFloor+s.apiFloor).Seconds()))
		maxT = math.Max(maxT, s.replayTime.Seconds())
	}
	maxT *= 1.1
	x := func(n float64) float64 { return left + (w-left-right)*n/maxN }
	y := func(t float64) float64 { return h - bottom - (h-top-bottom)*t/maxT }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14">Time until all 2N push/pull secrets are Ready (%s)</text>`+"\n", left, r.label)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, h-bottom)
	for i := 0; i <= 5; i++ {
		t := maxT * float64(i) / 5
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%.0fs</text>`+"\n", left-6, y(t)+4, t)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(t), w-right, y(t))
	}
	for _, s := range r.scale {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d</text>`+"\n", x(float64(s.n)), h-bottom+16, s.n)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">N (push + pull objects each)</text>`+"\n", (left+w-right)/2, h-12)
	line := func(color string, val func(s scaleResult) float64, name string, ly float64) {
		pts := []string{fmt.Sprintf("%.1f,%.1f", x(0), y(0))}
		for _, s := range r.scale {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(s.n)), y(val(s))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		for _, s := range r.scale {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>N=%d: %.1fs</title></circle>`+"\n", x(float64(s.n)), y(val(s)), color, s.n, val(s))
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", left+10, ly, color, name)
	}
	line("#c0392b", func(s scaleResult) float64 { return s.readyTime.Seconds() }, "measured", top+10)
	line("#2471a3", func(s scaleResult) float64 { return (s.bcryptFloor + s.apiFloor).Seconds() }, "floor (bcrypt CPU + API writes)", top+26)
	if r.allReplayed() {
		line("#27ae60", func(s scaleResult) float64 { return s.replayTime.Seconds() }, "ideal client replay (no operator)", top+42)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// allReplayed: every N has an ideal-client replay to plot.
func (r *results) allReplayed() bool {
	for _, s := range r.scale {
		if s.replayTime <= 0 {
			return false
		}
	}
	return true
}

// waveRows are the rows (metric, value, notes) of the scheduled wave.
func waveRows(s scaleResult) [][3]string {
	n2 := 2 * s.n
	var warn string
	if s.waveScheduledBefore > 0 || s.waveEarly > 0 {
		warn += fmt.Sprintf("; WARNING: %.0f scheduled rotations before the wave (%d objects rotated before it was due to start): --rotation-interval too short for this N, the sweep is distorted", s.waveScheduledBefore, s.waveEarly)
	}
	if s.waveInGrace > 0 {
		warn += fmt.Sprintf("; %d objects were still in the sweep's grace period at the start", s.waveInGrace)
	}
	wave := [3]string{"scheduled rotation wave (2N due by timers)", secs(s.waveSpread),
		fmt.Sprintf("first to last rotation; due over %s (the sweep's spread plus a jitter below %s); from 5 s before the first due moment to the last rotation: CPU %.1fs, peak %.2f cores, %.0f requests (%s)%s",
			secs(s.waveDueSpread), secs(s.waveJitterSpan), s.waveCPU, s.wavePeakCPU, s.waveRequests, s.waveRequestsByVerb, warn)}
	queue := fmt.Sprintf("longest workqueue wait %s: ", queueBound(s.waveQueueWait))
	if s.waveQueueWait <= 10 {
		queue += "target (<= 10 s) met"
	} else {
		queue += "target (<= 10 s) missed"
	}
	watch := fmt.Sprintf("due to status write seen by the bench's watch: p50 %s, p99 %s, max %s", shortDur(s.waveLagP50), shortDur(s.waveLagP99), shortDur(s.waveLagMax))
	if !s.waveHistogram {
		return [][3]string{wave, {"scheduled rotation delay after due", "no histogram",
			fmt.Sprintf("the operator does not export %s (older binary? use --operator-bin); %s; %s", delayMetric, watch, queue)}}
	}
	delay := [3]string{"scheduled rotation delay after due", "max " + delayBound(s.waveDelayMax),
		fmt.Sprintf("p50 %s, p99 %s over %.0f observations (want %d) of rotation_delay_seconds; %s; %s",
			delayBound(s.waveDelayP50), delayBound(s.waveDelayP99), s.waveObservations, n2, watch, queue)}
	return [][3]string{wave, delay}
}

// queueBound prints a workqueue_queue_duration_seconds bucket bound; the
// last finite bucket of client-go's histogram is 10s.
func queueBound(b float64) string {
	if b >= 1e18 {
		return "> 10s (beyond the histogram's last bucket)"
	}
	return fmt.Sprintf("<= %gs", b)
}
