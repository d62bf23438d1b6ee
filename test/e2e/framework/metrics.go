package framework

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics is one scrape of a Prometheus text endpoint: each sample's series
// (name with labels, as printed) to its value.
type Metrics map[string]float64

// Get returns the value of series, e.g.
// `image_registry_operator_rotations_total{cause="scheduled",kind="push"}`.
func (m Metrics) Get(series string) (float64, bool) {
	v, ok := m[series]
	return v, ok
}

// HasMetric tells whether any series of the metric name is present.
func (m Metrics) HasMetric(name string) bool {
	for series := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			return true
		}
	}
	return false
}

// ScrapeMetrics reads a Prometheus text exposition from url.
func ScrapeMetrics(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	return ParseMetrics(string(b)), nil
}

// ParseMetrics parses a Prometheus text exposition; comments and lines
// without a numeric value are skipped.
func ParseMetrics(exposition string) Metrics {
	m := Metrics{}
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}
