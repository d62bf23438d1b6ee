package framework

import "testing"

func TestParseMetrics(t *testing.T) {
	m := ParseMetrics(`# HELP x_total A counter.
# TYPE x_total counter
x_total{kind="push"} 3
x_total{kind="pull"} 1.5e+00
workqueue_depth{name="q"} 0
broken line
`)
	if v, ok := m.Get(`x_total{kind="push"}`); !ok || v != 3 {
		t.Errorf("push = %v, %v", v, ok)
	}
	if v, _ := m.Get(`x_total{kind="pull"}`); v != 1.5 {
		t.Errorf("pull = %v", v)
	}
	if !m.HasMetric("workqueue_depth") || m.HasMetric("workqueue") || len(m) != 3 {
		t.Errorf("parsed %v", m)
	}
}
