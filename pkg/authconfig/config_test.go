package authconfig

import (
	"strings"
	"testing"
)

const base = `
server: {addr: ":5001", certificate: /tls/tls.crt, key: /tls/tls.key}
token: {issuer: test, expiration: 300, certificate: /token/tls.crt, key: /token/tls.key}
acl:
- match: {labels: {type: push}, name: "${labels:namespace}/*"}
  actions: [push, pull]
`

func TestParseRejectsUnknownKeys(t *testing.T) {
	if _, err := Parse([]byte(base)); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	for name, cfg := range map[string]string{
		"unknown section":   base + "ldap_auth: {addr: ldap:389}\n",
		"unknown match key": strings.Replace(base, "labels: {type: push}", "origin: cr", 1),
	} {
		if _, err := Parse([]byte(cfg)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseForDockerAuth(t *testing.T) {
	withLDAP := base + "ldap_auth: {addr: \"ldap.example.org:636\", tls: always}\n"
	c, err := ParseForDockerAuth([]byte(withLDAP))
	if err != nil {
		t.Fatalf("docker_auth's own sections must be left to docker_auth: %v", err)
	}
	if c.Token.Certificate != "/token/tls.crt" || len(c.ACL) != 1 {
		t.Errorf("parsed %+v", c)
	}
	// The ACL stays strict: a misspelt match key would match everything.
	bad := strings.Replace(withLDAP, "labels: {type: push}", "origin: cr, accessMode: push", 1)
	if _, err := ParseForDockerAuth([]byte(bad)); err == nil || !strings.Contains(err.Error(), "acl") {
		t.Errorf("unknown ACL match keys: err = %v, want an acl error", err)
	}
	if _, err := ParseForDockerAuth([]byte("server: {addr: ':5001'}\n")); err == nil {
		t.Error("a config without token settings was accepted")
	}
}
