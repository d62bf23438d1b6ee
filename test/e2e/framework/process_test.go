package framework

import (
	"bytes"
	"strings"
	"testing"
)

func TestTailBufferLines(t *testing.T) {
	tb := &tailBuffer{}
	for _, s := range []string{"one\ntw", "o\nthree\n", "four\n"} {
		if _, err := tb.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := tb.Lines(2), "three\nfour"; got != want {
		t.Errorf("Lines(2) = %q, want %q", got, want)
	}
	if got, want := tb.Lines(10), "one\ntwo\nthree\nfour"; got != want {
		t.Errorf("Lines(10) = %q, want %q", got, want)
	}
}

func TestTailBufferKeepsOnlyTheEnd(t *testing.T) {
	tb := &tailBuffer{}
	line := strings.Repeat("x", 1023) + "\n"
	for range 2 * tailBytes / len(line) {
		if _, err := tb.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tb.Write([]byte("last\n")); err != nil {
		t.Fatal(err)
	}
	if len(tb.buf) > tailBytes {
		t.Errorf("buffer holds %d bytes, want at most %d", len(tb.buf), tailBytes)
	}
	if got := tb.Lines(1); got != "last" {
		t.Errorf("Lines(1) = %q, want %q", got, "last")
	}
}

func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	pw := &prefixWriter{w: &out, prefix: "[etcd] "}
	for _, s := range []string{"a\nb", "c\n", "\nd"} {
		if _, err := pw.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "[etcd] a\n[etcd] bc\n[etcd] \n[etcd] d\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}
