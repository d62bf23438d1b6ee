// Package authconfig is the auth server configuration in cesanta/docker_auth's
// YAML format: the registry controller renders it, and both token servers
// (the builtin registry-auth and upstream docker_auth) read it.
//
// Only the subset below is supported. Load rejects unknown keys: docker_auth
// itself drops them without a word, which once turned an ACL with misspelt
// match keys into "everyone may push" (in the operator this project replaces).
package authconfig

import (
	"errors"
	"fmt"
	"os"
	"path"

	"sigs.k8s.io/yaml"
)

// ExtAuthCommand is the file name of our docker_auth ext_auth authenticator.
// The builtin token server runs the same authenticator in-process when the
// config's ext_auth command has this name.
const ExtAuthCommand = "k8s-docker-authn"

// Config is an auth server configuration file.
type Config struct {
	// Server is where the token server listens and its TLS key pair.
	Server ServerConfig `json:"server"`
	// Token configures the issued JWTs.
	Token TokenConfig `json:"token"`
	// ExtAuth is the external authenticator command.
	ExtAuth *ExtAuthConfig `json:"ext_auth,omitempty"`
	// ACL is tried in order; the first matching entry decides.
	ACL []ACLEntry `json:"acl"`
}

// ServerConfig is docker_auth's "server" section.
type ServerConfig struct {
	// Addr is the listen address, e.g. ":5001".
	Addr string `json:"addr"`
	// Certificate and Key are PEM file paths; empty means plain HTTP.
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
}

// TokenConfig is docker_auth's "token" section.
type TokenConfig struct {
	// Issuer is the JWT "iss"; the registry's auth.token.issuer must equal it.
	Issuer string `json:"issuer"`
	// Expiration is the token lifetime in seconds.
	Expiration int64 `json:"expiration"`
	// Certificate and Key are PEM file paths of the signing key pair; the
	// registry's auth.token.rootcertbundle holds the same certificate.
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
}

// ExtAuthConfig is docker_auth's "ext_auth" section.
type ExtAuthConfig struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
}

// ACLEntry is one docker_auth ACL rule.
type ACLEntry struct {
	Match   ACLMatch `json:"match"`
	Actions []string `json:"actions"`
	Comment string   `json:"comment,omitempty"`
}

// ACLMatch holds the match keys docker_auth knows. An empty match matches
// every request, anonymous ones included.
type ACLMatch struct {
	Account string            `json:"account,omitempty"`
	Type    string            `json:"type,omitempty"`
	Name    string            `json:"name,omitempty"`
	IP      string            `json:"ip,omitempty"`
	Service string            `json:"service,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// IsOurExtAuth tells whether the ext_auth command is our authenticator.
func (c *Config) IsOurExtAuth() bool {
	return c.ExtAuth != nil && path.Base(c.ExtAuth.Command) == ExtAuthCommand
}

// Parse decodes and validates a configuration, rejecting unknown keys.
func Parse(data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("invalid auth config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads and parses a configuration file.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read auth config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// Marshal renders the configuration as YAML.
func (c *Config) Marshal() ([]byte, error) {
	return yaml.Marshal(c)
}

// Validate checks what the token servers need to start.
func (c *Config) Validate() error {
	var errs []error
	if c.Server.Addr == "" {
		errs = append(errs, errors.New("server.addr is required"))
	}
	if (c.Server.Certificate == "") != (c.Server.Key == "") {
		errs = append(errs, errors.New("server.certificate and server.key must be set together"))
	}
	if c.Token.Issuer == "" {
		errs = append(errs, errors.New("token.issuer is required"))
	}
	if c.Token.Expiration <= 0 {
		errs = append(errs, errors.New("token.expiration must be a positive number of seconds"))
	}
	if c.Token.Certificate == "" || c.Token.Key == "" {
		errs = append(errs, errors.New("token.certificate and token.key are required"))
	}
	if c.ExtAuth != nil && c.ExtAuth.Command == "" {
		errs = append(errs, errors.New("ext_auth.command is required"))
	}
	for i, e := range c.ACL {
		if e.Actions == nil {
			errs = append(errs, fmt.Errorf("acl[%d]: actions is required (use [] to deny)", i))
		}
	}
	return errors.Join(errs...)
}

// ParseForDockerAuth decodes a configuration that upstream docker_auth will
// read: it may hold sections only docker_auth knows (ldap_auth,
// google_auth, users, ...), which are left alone. What both servers rely on
// is still checked strictly: the ACL's entries and match keys (an unknown
// match key is how an ACL once granted everything) and the server and token
// settings.
func ParseForDockerAuth(data []byte) (*Config, error) {
	var c Config
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("invalid auth config: %w", err)
	}
	var sections map[string]any
	if err := yaml.Unmarshal(data, &sections); err != nil {
		return nil, fmt.Errorf("invalid auth config: %w", err)
	}
	if rawACL, ok := sections["acl"]; ok {
		aclYAML, err := yaml.Marshal(rawACL)
		if err != nil {
			return nil, fmt.Errorf("invalid acl: %w", err)
		}
		var entries []ACLEntry
		if err := yaml.UnmarshalStrict(aclYAML, &entries); err != nil {
			return nil, fmt.Errorf("invalid acl: %w", err)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
