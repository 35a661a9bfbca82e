package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRun_KeyvaultFake_RefusesANonLoopbackAddress(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"keyvault-fake", "--addr", "0.0.0.0:8443", "--dir", t.TempDir()},
		func(string) string { return "" }, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "must be a loopback address") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
