package main

import (
	"os"
	"runtime/debug"
	"strconv"
)

// defaultGCPercent is the operator's GOGC when its environment sets none.
// The operator's memory is mostly informer caches, which grow with the
// number of push and pull objects, while its CPU idles between bursts of
// syncs. Go's default (100) lets the heap reach twice the live data before
// collecting, and the runtime returns the pages only slowly afterwards; at
// 25 the heap stays within 1.25 times. make bench, N=3000 (docs/performance.md):
// RSS growth 7.6-8.3 KiB per object at 100, 6.1 at 50, 4.8 at 25, for about
// a fifth more operator CPU while a burst of new objects is synced.
const defaultGCPercent = 25

// applyGCPercent sets defaultGCPercent unless GOGC is set, and returns the
// GC percent in effect for the startup log.
func applyGCPercent() string {
	if v := os.Getenv("GOGC"); v != "" { // the runtime reads an empty GOGC as unset too
		return v + " (GOGC)"
	}
	debug.SetGCPercent(defaultGCPercent)
	return strconv.Itoa(defaultGCPercent)
}
