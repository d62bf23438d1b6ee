// Package acl evaluates docker_auth access control lists, so that the builtin
// token server grants exactly what upstream docker_auth would grant for the
// same rendered configuration.
//
// Semantics, as in docker_auth's static ACL authorizer:
//
//   - Entries are tried in order; the first entry whose match conditions all
//     hold decides. A request that matches no entry gets nothing.
//   - match.account, match.type (the resource type, e.g. "repository"),
//     match.name (the repository name), match.service and every value of
//     match.labels are patterns: "/re/" is an unanchored regular expression
//     (write ^ and $ yourself), anything else is a path.Match glob, whose "*"
//     does not cross a "/" (so "team/*" grants "team/app" but not
//     "team/a/b"). match.ip is an IP address or CIDR range.
//   - match.labels{KEY: pattern} holds when some value of the account's label
//     KEY matches the pattern.
//   - An empty match matches every request, anonymous ones included; the
//     anonymous account is the empty string.
//   - actions ["*"] grants every requested action, otherwise the requested
//     actions that are listed are granted.
//   - Placeholders ${account}, ${type}, ${name}, ${service} and
//     ${labels:KEY} are replaced before matching. A label with several
//     values makes each value an alternative (all combinations are tried, at
//     most MaxLabelCombinations); a label the account does not have leaves
//     the pattern unmatchable.
//
// Deliberate differences from docker_auth, each failing closed:
//   - Placeholder values are always inserted literally: escaped for the
//     regexp or glob they land in. docker_auth escapes them with
//     regexp.QuoteMeta (also in globs) and does not escape label values at
//     all, so a label value "*" would have matched anything.
//   - Unknown placeholders (such as docker_auth's ${name:1} capture-group
//     references), invalid globs and invalid regexps are rejected when the
//     ACL is built instead of never matching at run time.
//   - "*" anywhere in actions means all requested actions.
package acl

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
)

// MaxLabelCombinations bounds the alternatives that multi-valued labels
// expand a pattern to; a pattern needing more never matches.
const MaxLabelCombinations = 1024

// Request is one access request: a resource scope asked for by an account.
type Request struct {
	// Account is the authenticated login name; empty for anonymous.
	Account string
	// Type is the resource type, e.g. "repository" or "registry".
	Type string
	// Name is the resource name, e.g. "team/app".
	Name string
	// Service is the service the token is for (the registry's name).
	Service string
	// IP is the client address; the zero Addr never matches an ip pattern.
	IP netip.Addr
	// Labels are the account's labels; nil for anonymous.
	Labels map[string][]string
	// Actions are the requested actions, e.g. pull, push.
	Actions []string
}

// ACL is a validated, ready to evaluate access control list. It is immutable
// and safe for concurrent use.
type ACL struct {
	entries []entry
}

type entry struct {
	account, typ, name, service *pattern
	labels                      []labelMatch
	ip                          *netip.Prefix
	actions                     []string
	allActions                  bool
	comment                     string
}

type labelMatch struct {
	key string
	p   *pattern
}

// New validates the entries and builds an ACL. Every problem is reported,
// each naming its entry.
func New(entries []authconfig.ACLEntry) (*ACL, error) {
	a := &ACL{entries: make([]entry, 0, len(entries))}
	var errs []error
	for i, e := range entries {
		ce, err := compileEntry(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("acl[%d]: %w", i, err))
			continue
		}
		a.entries = append(a.entries, ce)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

func compileEntry(e authconfig.ACLEntry) (entry, error) {
	var errs []error
	field := func(name, src string) *pattern {
		if src == "" {
			return nil
		}
		p, err := compilePattern(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("match.%s %q: %w", name, src, err))
			return nil
		}
		return p
	}
	ce := entry{
		account: field("account", e.Match.Account),
		typ:     field("type", e.Match.Type),
		name:    field("name", e.Match.Name),
		service: field("service", e.Match.Service),
		comment: e.Comment,
	}
	for _, k := range sortedKeys(e.Match.Labels) {
		if k == "" {
			errs = append(errs, errors.New("match.labels: empty label name"))
			continue
		}
		src := e.Match.Labels[k]
		p, err := compilePattern(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("match.labels.%s %q: %w", k, src, err))
			continue
		}
		ce.labels = append(ce.labels, labelMatch{key: k, p: p})
	}
	if e.Match.IP != "" {
		pfx, err := parseIPPattern(e.Match.IP)
		if err != nil {
			errs = append(errs, fmt.Errorf("match.ip %q: %w", e.Match.IP, err))
		} else {
			ce.ip = &pfx
		}
	}
	if e.Actions == nil {
		errs = append(errs, errors.New("actions is required (use [] to deny)"))
	}
	for _, act := range e.Actions {
		switch {
		case act == "*":
			ce.allActions = true
		case act == "":
			errs = append(errs, errors.New("actions: empty action"))
		default:
			ce.actions = append(ce.actions, act)
		}
	}
	return ce, errors.Join(errs...)
}

func parseIPPattern(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("neither an IP address nor a CIDR range")
	}
	return p.Masked(), nil
}

// Len is the number of entries.
func (a *ACL) Len() int { return len(a.entries) }

// Decision is the outcome of an authorization.
type Decision struct {
	// Actions are the granted actions, in request order, without duplicates.
	// Empty when nothing is granted.
	Actions []string
	// Entry is the index of the deciding entry, -1 when none matched.
	Entry int
	// Comment is the deciding entry's comment.
	Comment string
}

// Authorize finds the first entry that matches the request and returns the
// requested actions that entry grants.
func (a *ACL) Authorize(r Request) Decision {
	for i := range a.entries {
		e := &a.entries[i]
		if !e.matches(&r) {
			continue
		}
		return Decision{Actions: e.grant(r.Actions), Entry: i, Comment: e.comment}
	}
	return Decision{Entry: -1}
}

func (e *entry) grant(requested []string) []string {
	var out []string
	seen := make(map[string]bool, len(requested))
	for _, act := range requested {
		if seen[act] {
			continue
		}
		seen[act] = true
		if e.allActions || contains(e.actions, act) {
			out = append(out, act)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (e *entry) matches(r *Request) bool {
	if !e.account.matches(r.Account, r) ||
		!e.typ.matches(r.Type, r) ||
		!e.name.matches(r.Name, r) ||
		!e.service.matches(r.Service, r) {
		return false
	}
	if e.ip != nil {
		if !r.IP.IsValid() || !e.ip.Contains(r.IP.Unmap()) {
			return false
		}
	}
	for _, lm := range e.labels {
		ok := false
		for _, v := range r.Labels[lm.key] {
			if lm.p.matches(v, r) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Default is the ACL the operator renders when an ImageRegistry that is no
// pull-through cache has no spec.auth.acl (docs/design.md): push accounts
// may push, pull and delete the repositories under their own namespace,
// pull accounts may pull them, and nobody else, anonymous included, gets
// anything.
func Default() []authconfig.ACLEntry {
	return []authconfig.ACLEntry{
		{
			Match:   authconfig.ACLMatch{Labels: map[string]string{"type": "push"}, Name: "${labels:namespace}/*"},
			Actions: []string{"push", "pull", "delete"},
			Comment: "push accounts may push, pull and delete their own namespace's repositories",
		},
		{
			Match:   authconfig.ACLMatch{Labels: map[string]string{"type": "pull"}, Name: "${labels:namespace}/*"},
			Actions: []string{"pull"},
			Comment: "pull accounts may pull their own namespace's repositories",
		},
	}
}

// patternKind tells how a pattern's text is matched.
type patternKind int

const (
	globPattern patternKind = iota
	regexpPattern
)

// pattern is a compiled match pattern. Patterns without placeholders are
// compiled once; the others are expanded and compiled per request.
type pattern struct {
	kind  patternKind
	parts []part // literal text and placeholders, in order
	// static is set when the pattern has no placeholders.
	staticRE   *regexp.Regexp
	staticGlob string
	static     bool
}

type part struct {
	lit string
	// ph is the placeholder: "account", "type", "name", "service" or
	// "labels:KEY"; empty for a literal part.
	ph string
}

var errTooManyCombinations = errors.New("too many label combinations")

func isRegexp(s string) bool {
	return len(s) > 2 && s[0] == '/' && s[len(s)-1] == '/'
}

func compilePattern(src string) (*pattern, error) {
	p := &pattern{kind: globPattern}
	body := src
	if isRegexp(src) {
		p.kind = regexpPattern
		body = src[1 : len(src)-1]
	}
	parts, err := splitPlaceholders(body)
	if err != nil {
		return nil, err
	}
	p.parts = parts
	// Validate the syntax with every placeholder replaced by a harmless
	// literal, so that a broken pattern fails at start-up.
	var b strings.Builder
	for _, pt := range parts {
		if pt.ph != "" {
			b.WriteString("x")
		} else {
			b.WriteString(pt.lit)
		}
	}
	switch p.kind {
	case regexpPattern:
		re, err := regexp.Compile(b.String())
		if err != nil {
			return nil, err
		}
		if !hasPlaceholder(parts) {
			p.static, p.staticRE = true, re
		}
	default:
		if _, err := path.Match(b.String(), ""); err != nil {
			return nil, err
		}
		if !hasPlaceholder(parts) {
			p.static, p.staticGlob = true, b.String()
		}
	}
	return p, nil
}

func hasPlaceholder(parts []part) bool {
	for _, pt := range parts {
		if pt.ph != "" {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// splitPlaceholders splits a pattern body into literals and placeholders.
func splitPlaceholders(s string) ([]part, error) {
	var parts []part
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			if s != "" {
				parts = append(parts, part{lit: s})
			}
			return parts, nil
		}
		if i > 0 {
			parts = append(parts, part{lit: s[:i]})
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unterminated placeholder %q", s[i:])
		}
		name := s[i+2 : i+end]
		switch {
		case name == "account", name == "type", name == "name", name == "service":
		case strings.HasPrefix(name, "labels:") && len(name) > len("labels:"):
		default:
			return nil, fmt.Errorf("unknown placeholder ${%s} (known: ${account}, ${type}, ${name}, ${service}, ${labels:KEY})", name)
		}
		parts = append(parts, part{ph: name})
		s = s[i+end+1:]
	}
}

// matches reports whether value matches the pattern for request r. A nil
// pattern (an absent match key) matches everything.
func (p *pattern) matches(value string, r *Request) bool {
	if p == nil {
		return true
	}
	if p.static {
		if p.kind == regexpPattern {
			return p.staticRE.MatchString(value)
		}
		ok, _ := path.Match(p.staticGlob, value)
		return ok
	}
	matched := false
	err := p.expand(r, func(expanded string) bool {
		if p.kind == regexpPattern {
			re, err := regexp.Compile(expanded)
			matched = err == nil && re.MatchString(value)
		} else {
			ok, err := path.Match(expanded, value)
			matched = err == nil && ok
		}
		return matched
	})
	return err == nil && matched
}

// expand calls fn with every expansion of the pattern's placeholders for r
// until fn returns true.
func (p *pattern) expand(r *Request, fn func(string) bool) error {
	quote := escapeGlob
	if p.kind == regexpPattern {
		quote = regexp.QuoteMeta
	}
	// Each part has one or more alternatives; labels may have several.
	alts := make([][]string, len(p.parts))
	total := 1
	for i, pt := range p.parts {
		switch {
		case pt.ph == "":
			alts[i] = []string{pt.lit}
		case strings.HasPrefix(pt.ph, "labels:"):
			vals := r.Labels[strings.TrimPrefix(pt.ph, "labels:")]
			if len(vals) == 0 {
				return nil // the pattern cannot match
			}
			q := make([]string, len(vals))
			for j, v := range vals {
				q[j] = quote(v)
			}
			alts[i] = q
		default:
			alts[i] = []string{quote(r.field(pt.ph))}
		}
		total *= len(alts[i])
		if total > MaxLabelCombinations {
			return errTooManyCombinations
		}
	}
	idx := make([]int, len(alts))
	var b strings.Builder
	for {
		b.Reset()
		for i, a := range alts {
			b.WriteString(a[idx[i]])
		}
		if fn(b.String()) {
			return nil
		}
		// Advance the odometer.
		i := len(idx) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(alts[i]) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return nil
		}
	}
}

func (r *Request) field(name string) string {
	switch name {
	case "account":
		return r.Account
	case "type":
		return r.Type
	case "name":
		return r.Name
	case "service":
		return r.Service
	}
	return ""
}

// escapeGlob makes s match itself literally in a path.Match pattern.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
