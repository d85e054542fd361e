package gateway

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// segment is one part of a resource template: a literal, or a {param} when
// param is set.
type segment struct {
	literal string
	param   string
}

// resource is one API Gateway resource (a path template) and its methods.
type resource struct {
	template string
	id       string
	segs     []segment
	methods  map[string]api.Route
	// allow is the Allow header for a 405, computed once.
	allow string
}

// router resolves a request path to a resource. A linear scan is plenty for a
// table of a few dozen routes, and it keeps the precedence rule in one place.
type router struct {
	resources []*resource
}

// newRouter builds the resource table and refuses templates API Gateway would
// refuse too, so a route table that deploys is exactly a table that runs locally.
func newRouter(routes []api.Route) (*router, error) {
	byTemplate := map[string]*resource{}
	var order []*resource
	// paramAt records the parameter name used below each normalised prefix:
	// API Gateway allows one {param} child per resource, so /a/{x} and
	// /a/{y}/b cannot both exist.
	paramAt := map[string]string{}
	for _, rt := range routes {
		if rt.Method == "" || strings.ToUpper(rt.Method) != rt.Method {
			return nil, fmt.Errorf("route %s %s: method must be upper case and non-empty", rt.Method, rt.Resource)
		}
		segs, err := parseTemplate(rt.Resource)
		if err != nil {
			return nil, fmt.Errorf("route %s %s: %w", rt.Method, rt.Resource, err)
		}
		prefix := ""
		for _, s := range segs {
			if s.param != "" {
				if prev, ok := paramAt[prefix]; ok && prev != s.param {
					return nil, fmt.Errorf("route %s %s: {%s} conflicts with {%s} at %s/",
						rt.Method, rt.Resource, s.param, prev, prefix)
				}
				paramAt[prefix] = s.param
				prefix += "/{}"
			} else {
				prefix += "/" + s.literal
			}
		}
		res, ok := byTemplate[rt.Resource]
		if !ok {
			res = &resource{template: rt.Resource, id: resourceID(rt.Resource), segs: segs, methods: map[string]api.Route{}}
			byTemplate[rt.Resource] = res
			order = append(order, res)
		}
		if _, dup := res.methods[rt.Method]; dup {
			return nil, fmt.Errorf("route %s %s: defined twice", rt.Method, rt.Resource)
		}
		res.methods[rt.Method] = rt
	}
	for _, res := range order {
		methods := make([]string, 0, len(res.methods))
		for m := range res.methods {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		res.allow = strings.Join(methods, ", ")
	}
	return &router{resources: order}, nil
}

// parseTemplate splits "/v1/agents/{agent_id}" into segments.
func parseTemplate(t string) ([]segment, error) {
	if !strings.HasPrefix(t, "/") {
		return nil, fmt.Errorf("resource must start with /")
	}
	if t == "/" {
		return nil, nil
	}
	parts := strings.Split(t[1:], "/")
	segs := make([]segment, 0, len(parts))
	seen := map[string]bool{}
	for _, p := range parts {
		switch {
		case p == "":
			return nil, fmt.Errorf("empty path segment")
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			name := p[1 : len(p)-1]
			if strings.HasSuffix(name, "+") {
				// Greedy parameters change matching rules; nothing uses them yet.
				return nil, fmt.Errorf("greedy parameter %s is not supported", p)
			}
			if name == "" || strings.ContainsAny(name, "{}") {
				return nil, fmt.Errorf("malformed parameter %s", p)
			}
			if seen[name] {
				return nil, fmt.Errorf("parameter {%s} used twice", name)
			}
			seen[name] = true
			segs = append(segs, segment{param: name})
		case strings.ContainsAny(p, "{}"):
			return nil, fmt.Errorf("malformed segment %s", p)
		default:
			segs = append(segs, segment{literal: p})
		}
	}
	return segs, nil
}

// match returns the resource for an escaped request path and its decoded path
// parameters, or nil. Among resources that match, a literal segment beats a
// {param} at the first position where they differ, like API Gateway's resource tree.
func (rt *router) match(escapedPath string) (*resource, map[string]string) {
	if !strings.HasPrefix(escapedPath, "/") {
		return nil, nil
	}
	// API Gateway routes /v1/agents/ to /v1/agents.
	if len(escapedPath) > 1 {
		escapedPath = strings.TrimSuffix(escapedPath, "/")
	}
	var parts []string
	if escapedPath != "/" {
		// Split before decoding so an encoded slash stays inside its segment.
		raw := strings.Split(escapedPath[1:], "/")
		parts = make([]string, len(raw))
		for i, p := range raw {
			d, err := url.PathUnescape(p)
			if err != nil {
				return nil, nil
			}
			parts[i] = d
		}
	}
	var best *resource
	for _, res := range rt.resources {
		if !res.matches(parts) {
			continue
		}
		if best == nil || moreSpecific(res, best) {
			best = res
		}
	}
	if best == nil {
		return nil, nil
	}
	var params map[string]string
	for i, s := range best.segs {
		if s.param != "" {
			if params == nil {
				params = map[string]string{}
			}
			params[s.param] = parts[i]
		}
	}
	return best, params
}

func (res *resource) matches(parts []string) bool {
	if len(parts) != len(res.segs) {
		return false
	}
	for i, s := range res.segs {
		if parts[i] == "" {
			return false
		}
		if s.param == "" && s.literal != parts[i] {
			return false
		}
	}
	return true
}

// moreSpecific reports whether a beats b; both matched the same path, so they
// have the same length and equal literals wherever both are literal.
func moreSpecific(a, b *resource) bool {
	for i := range a.segs {
		aLit, bLit := a.segs[i].param == "", b.segs[i].param == ""
		if aLit != bLit {
			return aLit
		}
	}
	return false
}

// resourceID is a stable stand-in for API Gateway's generated resource id.
func resourceID(template string) string {
	h := fnv.New32a()
	h.Write([]byte(template))
	return fmt.Sprintf("%06x", h.Sum32()&0xffffff)
}
