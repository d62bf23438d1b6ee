package tokenserver

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
)

// floodPace spaces each valid client's requests (0: back to back). Paced,
// the valid clients leave the cores room, and their p99 shows what a
// flood adds to a login's latency; back to back they saturate 2 cores on
// their own (client and server share the process), and the p99 is their
// own queueing.
var floodPace = flag.Duration("flood.pace", 5*time.Millisecond, "BenchmarkLoginFlood: time between one valid client's requests (8 clients; 0: back to back)")

// floodConfig is one row of BenchmarkLoginFlood.
type floodConfig struct {
	name  string
	flood bool
	opts  func(*authn.Options)
	// delay: registry-auth's default --refusal-delay and -max.
	delay bool
}

// BenchmarkLoginFlood measures valid logins that the verified cache
// serves (b.N token requests from 8 concurrent clients at 127.0.0.1) while
// 8 attackers, each from its own address (127.0.0.2-9), send wrong
// passwords as fast as they get answers, all over HTTP on the loopback
// interface to the token server running in the benchmark's process (each
// client blocks on its connection as a real one does; handing requests to
// the handler directly would measure the Go scheduler's 10 ms time slices
// between CPU-bound loops instead):
// in turn to a static account with 8 hashes at bcrypt cost 10 (0.5 s of
// CPU per wrong password when every hash is compared) and to made-up user
// names. It reports the valid logins' p50 and p99, the attackers' request
// rate and how they were answered, and the process's CPU use.
//
//	go test -run X -bench LoginFlood -benchtime 8000x ./pkg/tokenserver [-flood.pace=0]
//
// Rows:
//   - no-flood: the valid clients alone.
//   - flood/old-gate: the gate before login-flood limits (2 compares per
//     core, an unbounded queue, no budgets), with today's dummy compares.
//   - flood/gate-only: today's gate, no budgets (an attacker with more
//     addresses than budgets matter for).
//   - flood/budgets: today's gate and budgets, 429s answered at once.
//   - flood/defaults: everything at registry-auth's defaults, 429s held
//     for --refusal-delay.
func BenchmarkLoginFlood(b *testing.B) {
	for _, cfg := range []floodConfig{
		{"no-flood", false, nil, true},
		{"flood/old-gate", true, func(o *authn.Options) {
			o.CompareConcurrency = 2 * runtime.GOMAXPROCS(0)
			o.CompareQueue, o.CompareWait = 1<<30, time.Hour
			o.UserLimitBurst, o.ClientLimitBurst = 0, 0
		}, false},
		{"flood/gate-only", true, func(o *authn.Options) { o.UserLimitBurst, o.ClientLimitBurst = 0, 0 }, true},
		{"flood/budgets", true, nil, false},
		{"flood/defaults", true, nil, true},
	} {
		b.Run(cfg.name, func(b *testing.B) { benchFlood(b, cfg) })
	}
}

func benchFlood(b *testing.B, cfg floodConfig) {
	defer captureKlog(io.Discard)()
	const validPW = "valid-password-of-43-characters-0123456789a"
	static := &registryv1alpha1.ImageRegistryAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "ci", Namespace: testNS},
		Spec: registryv1alpha1.ImageRegistryAccountSpec{
			Username: "ci",
			Labels:   map[string][]string{"namespace": {"team"}, "type": {"push"}},
		},
	}
	for i := 0; i < 8; i++ {
		h, err := bcrypt.GenerateFromPassword([]byte(fmt.Sprint("static-password-", i)), 10)
		if err != nil {
			b.Fatal(err)
		}
		static.Spec.Passwords = append(static.Spec.Passwords, string(h))
	}
	a := startFloodAuthenticator(b, cfg.opts,
		account("push", "team/app", 1, "push", "team", validPW, 4), // the operator's default cost
		static)
	srv := newTestServer(b, a)
	if cfg.delay {
		srv.SetRefusalDelay(DefaultRefusalDelay, DefaultMaxDelayed)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	base := "http://" + u.Host + "/auth?" + scopeParams("repository:team/web:pull").Encode()

	get := func(c *http.Client, user, pw string) (int, error) {
		req, err := http.NewRequest(http.MethodGet, base, nil)
		if err != nil {
			return 0, err
		}
		req.SetBasicAuth(user, pw)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	valid := clientFrom(b, "127.0.0.1", 8)
	getValid := func() int {
		code, err := get(valid, "team/app/1", validPW)
		if err != nil {
			b.Error(err)
		}
		return code
	}
	if code := getValid(); code != http.StatusOK {
		b.Fatalf("first login: %d", code)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var (
		attackWG sync.WaitGroup
		codes    sync.Map // status -> *atomic.Int64
		attacks  atomic.Int64
	)
	count := func(code int) {
		v, _ := codes.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	if cfg.flood {
		for i := 0; i < 8; i++ {
			c := clientFrom(b, fmt.Sprintf("127.0.0.%d", i+2), 1)
			attackWG.Add(1)
			go func(i int) {
				defer attackWG.Done()
				for n := 0; ctx.Err() == nil; n++ {
					user := "ci"
					if n%2 == 1 {
						user = fmt.Sprintf("ghost-%d-%d", i, n)
					}
					code, err := get(c, user, fmt.Sprint("wrong-", n))
					if err != nil {
						if ctx.Err() == nil {
							b.Error(err)
						}
						return
					}
					attacks.Add(1)
					count(code)
				}
			}(i)
		}
		// Let the flood fill the compare slots (and drain the budgets).
		time.Sleep(500 * time.Millisecond)
	}

	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	attacksBefore := attacks.Load()
	cpuBefore := cpuTime()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			// Spread the clients over the pace, each on its own schedule;
			// one that falls behind does not catch up in a burst.
			due := start.Add(time.Duration(g) * *floodPace / 8)
			for {
				if *floodPace > 0 {
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
					due = maxTime(due.Add(*floodPace), time.Now())
				}
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t := time.Now()
				code := getValid()
				lat[i] = time.Since(t)
				if code != http.StatusOK {
					failed.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuTime() - cpuBefore
	attacked := attacks.Load() - attacksBefore
	cancel()
	attackWG.Wait()
	if n := failed.Load(); n > 0 {
		b.Errorf("%d valid logins failed", n)
	}

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*99)/100]), "p99-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "valid/s")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cpu-cores")
	if cfg.flood {
		b.ReportMetric(float64(attacked)/elapsed.Seconds(), "attacks/s")
		var total int64
		byCode := map[int]int64{}
		codes.Range(func(k, v any) bool {
			byCode[k.(int)] = v.(*atomic.Int64).Load()
			total += byCode[k.(int)]
			return true
		})
		for _, code := range []int{http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusServiceUnavailable} {
			b.ReportMetric(100*float64(byCode[code])/float64(max(total, 1)), fmt.Sprintf("%%%d", code))
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// clientFrom is an HTTP client whose connections come from the local
// address ip (any 127.0.0.0/8 address works on Linux's loopback).
func clientFrom(b *testing.B, ip string, conns int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startFloodAuthenticator runs pkg/authn with the default options changed
// by opts, and a verified cache that outlives the run (the bench measures
// cached logins).
func startFloodAuthenticator(b *testing.B, opts func(*authn.Options), accounts ...*registryv1alpha1.ImageRegistryAccount) *authn.Authenticator {
	b.Helper()
	client := fake.NewClientset()
	for _, a := range accounts {
		if _, err := client.RegistryV1alpha1().ImageRegistryAccounts(testNS).Create(context.Background(), a, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(testNS))
	o := authn.NewOptions()
	o.Namespace = testNS
	o.CacheTTL = time.Hour
	if opts != nil {
		opts(o)
	}
	a, err := authn.New(factory.Registry().V1alpha1().ImageRegistryAccounts(), o)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), a.HasSynced) {
		b.Fatal("not synced")
	}
	return a
}
