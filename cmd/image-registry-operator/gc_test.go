package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestApplyGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	t.Setenv("GOGC", "80")
	if got := applyGCPercent(); got != "80 (GOGC)" {
		t.Errorf("with GOGC=80: %q", got)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC set in the environment, yet the GC percent became %d", p)
	}
}

func TestApplyGCPercentDefault(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	t.Setenv("GOGC", "") // registers the restore of the original value
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	if got := applyGCPercent(); got != "25" {
		t.Errorf("without GOGC: %q", got)
	}
	if p := debug.SetGCPercent(100); p != defaultGCPercent {
		t.Errorf("GC percent %d, want %d", p, defaultGCPercent)
	}
}
