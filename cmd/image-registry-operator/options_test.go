package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func parse(t *testing.T, args ...string) (*options, error) {
	t.Helper()
	t.Setenv("OPERATOR_DNS_ZONE", "")
	t.Setenv("WATCH_NAMESPACE", "")
	t.Setenv("OPERATOR_NAMESPACE", "")
	t.Setenv("POD_NAMESPACE", "")
	t.Setenv("OPERATOR_DEFAULT_REGISTRY_NAME", "")
	t.Setenv("OPERATOR_DEFAULT_REGISTRY_NAMESPACE", "")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &options{}
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.complete()
	return o, o.validate()
}

func TestOptionsDefaults(t *testing.T) {
	o, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.dnsZone != "svc.cluster.local" || o.rotationInterval != 24*time.Hour || o.gracePeriod != 5*time.Minute || o.bcryptCost != bcrypt.MinCost || o.kubeQPS != 1000 || o.kubeBurst != 2000 || o.namespace != "" {
		t.Errorf("unexpected defaults: %+v", o)
	}
}

func TestDefaultRegistryAllowedNamespaces(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"*"}},
		{[]string{"--default-registry-allowed-namespaces=team-a, team-b"}, []string{"team-a", "team-b"}},
		// Empty is "none besides spec.access", not the default.
		{[]string{"--default-registry-allowed-namespaces="}, []string{}},
	} {
		o, err := parse(t, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		if o.defaultRegistryNamespaces == nil || strings.Join(o.defaultRegistryNamespaces, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%v: %#v, want %#v", tc.args, o.defaultRegistryNamespaces, tc.want)
		}
	}
}

func TestOptionsEnvironment(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	t.Setenv("OPERATOR_DNS_ZONE", "example.org.")
	t.Setenv("OPERATOR_NAMESPACE", "infra")
	t.Setenv("OPERATOR_DEFAULT_REGISTRY_NAME", "registry")
	t.Setenv("OPERATOR_DEFAULT_REGISTRY_NAMESPACE", "")
	o := &options{}
	o.addFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	o.complete()
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.dnsZone != "example.org" {
		t.Errorf("dnsZone = %q, want the trailing dot trimmed", o.dnsZone)
	}
	if o.defaultRegistry.String() != "infra/registry" {
		t.Errorf("default registry = %s, want infra/registry", o.defaultRegistry)
	}
}

func TestOptionsRejectBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--namespace=Not_A_Namespace"}, "--namespace"},
		{[]string{"--rotation-interval=1s"}, "--rotation-interval"},
		{[]string{"--grace-period=0s"}, "--grace-period"},
		{[]string{"--bcrypt-cost=99"}, "--bcrypt-cost"},
		{[]string{"--dns-zone=-bad-"}, "--dns-zone"},
		{[]string{"--workers=0"}, "--workers"},
		{[]string{"--default-registry-name=a/b"}, "--default-registry-name"},
		{[]string{"--default-registry-allowed-namespaces=team-a,Team_B"}, "--default-registry-allowed-namespaces"},
	} {
		_, err := parse(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error = %v, want one naming %s", tc.args, err, tc.want)
		}
	}
	// All problems are reported at once.
	_, err := parse(t, "--workers=0", "--bcrypt-cost=1")
	if err == nil || !strings.Contains(err.Error(), "--workers") || !strings.Contains(err.Error(), "--bcrypt-cost") {
		t.Errorf("error = %v, want both problems", err)
	}
}
