package tokenserver

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on what a token request may ask for.
const (
	maxScopes      = 64
	maxScopeLength = 1024
)

// Scope is one requested resource scope, in the grammar of the distribution
// token spec: type[(class)]:name:action[,action...]. The name may hold one
// ":" (a registry host with a port), so it is what lies between the first
// and the last ":".
type Scope struct {
	Type    string
	Class   string
	Name    string
	Actions []string
}

func (s Scope) String() string {
	t := s.Type
	if s.Class != "" {
		t += "(" + s.Class + ")"
	}
	return t + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// ParseScope parses one scope. Types, classes and actions are lowercase
// alphanumerics (actions may also be "*"); names are path components of
// [a-zA-Z0-9._-] separated by "/", optionally behind a "host:port/". An
// action list may repeat actions; they are deduplicated.
func ParseScope(s string) (Scope, error) {
	if s == "" {
		return Scope{}, errors.New("empty scope")
	}
	if len(s) > maxScopeLength {
		return Scope{}, fmt.Errorf("scope longer than %d bytes", maxScopeLength)
	}
	first := strings.IndexByte(s, ':')
	last := strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return Scope{}, fmt.Errorf("invalid scope %q: want type:name:actions", s)
	}
	typ, name, acts := s[:first], s[first+1:last], s[last+1:]
	var sc Scope
	if open := strings.IndexByte(typ, '('); open >= 0 {
		if !strings.HasSuffix(typ, ")") {
			return Scope{}, fmt.Errorf("invalid scope %q: bad resource class", s)
		}
		sc.Class = typ[open+1 : len(typ)-1]
		typ = typ[:open]
		if !isLowerAlnum(sc.Class) {
			return Scope{}, fmt.Errorf("invalid scope %q: bad resource class", s)
		}
	}
	if !isLowerAlnum(typ) {
		return Scope{}, fmt.Errorf("invalid scope %q: bad resource type", s)
	}
	sc.Type = typ
	if !validName(name) {
		return Scope{}, fmt.Errorf("invalid scope %q: bad resource name", s)
	}
	sc.Name = name
	seen := map[string]bool{}
	for _, a := range strings.Split(acts, ",") {
		if a != "*" && !isLowerAlnum(a) {
			return Scope{}, fmt.Errorf("invalid scope %q: bad action %q", s, a)
		}
		if !seen[a] {
			seen[a] = true
			sc.Actions = append(sc.Actions, a)
		}
	}
	return sc, nil
}

// ParseScopes parses the values of a request's scope parameters; a value
// may hold several scopes separated by spaces.
func ParseScopes(values []string) ([]Scope, error) {
	var out []Scope
	for _, v := range values {
		for _, s := range strings.Fields(v) {
			if len(out) == maxScopes {
				return nil, fmt.Errorf("more than %d scopes", maxScopes)
			}
			sc, err := ParseScope(s)
			if err != nil {
				return nil, err
			}
			out = append(out, sc)
		}
	}
	return out, nil
}

func isLowerAlnum(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// validName accepts [host[:port]/]component(/component)*, components of
// [a-zA-Z0-9._-]. It is deliberately looser than the registry's reference
// grammar (which the registry enforces itself), but admits no character
// that is special in ACL globs or regexps beyond ".", and no empty path
// component.
func validName(name string) bool {
	if name == "" {
		return false
	}
	rest := name
	if i := strings.IndexByte(name, ':'); i >= 0 {
		// Only a host may carry a port: host:port/path.
		slash := strings.IndexByte(name, '/')
		if slash < i {
			return false
		}
		port := name[i+1 : slash]
		if port == "" {
			return false
		}
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return false
			}
		}
		rest = name[:i] + name[slash:]
	}
	for _, comp := range strings.Split(rest, "/") {
		if comp == "" {
			return false
		}
		for j := 0; j < len(comp); j++ {
			c := comp[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}
