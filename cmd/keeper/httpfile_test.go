package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// httpRequest is one request of a REST-client (.http) file.
type httpRequest struct {
	line    int    // line of the request line, for messages
	title   string // the text after ###
	name    string // # @name
	expect  []int  // # Expect: statuses
	method  string
	url     string
	headers [][2]string
	body    string
}

var (
	fileVarRe = regexp.MustCompile(`^@([A-Za-z_][\w]*)\s*=\s*(.*)$`)
	nameRe    = regexp.MustCompile(`^(?:#|//)\s*@name\s+(\S+)`)
	expectRe  = regexp.MustCompile(`^(?:#|//)\s*Expect:\s*(.+)$`)
	refRe     = regexp.MustCompile(`\{\{\s*([^{}]+?)\s*\}\}`)
)

// parseHTTPFile reads the subset of the VS Code REST Client format that api/keeper.http
// uses: file variables, ### separators, # @name, request line, headers, body, and
// Keeper's own "# Expect:" comment.
func parseHTTPFile(src string) (map[string]string, []httpRequest, error) {
	vars := map[string]string{}
	var reqs []httpRequest
	var cur *httpRequest
	inBody := false

	finish := func() {
		if cur != nil && cur.method != "" {
			cur.body = strings.TrimRight(cur.body, "\n")
			reqs = append(reqs, *cur)
		}
	}

	for i, raw := range strings.Split(src, "\n") {
		line := strings.TrimRight(raw, "\r")
		switch {
		case strings.HasPrefix(line, "###"):
			finish()
			cur = &httpRequest{title: strings.TrimSpace(strings.TrimPrefix(line, "###"))}
			inBody = false
		case cur == nil || cur.method == "":
			if err := parseHead(line, i+1, vars, &cur); err != nil {
				return nil, nil, err
			}
		case inBody:
			cur.body += line + "\n"
		case strings.TrimSpace(line) == "":
			inBody = true
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				return nil, nil, fmt.Errorf("line %d: header without a colon: %q", i+1, line)
			}
			cur.headers = append(cur.headers, [2]string{strings.TrimSpace(name),
				strings.TrimSpace(value)})
		}
	}
	finish()
	return vars, reqs, nil
}

// parseHead handles a line before a block's request line: variables, comments, the
// request line itself.
func parseHead(line string, n int, vars map[string]string, cur **httpRequest) error {
	trimmed := strings.TrimSpace(line)
	if m := fileVarRe.FindStringSubmatch(trimmed); m != nil {
		vars[m[1]] = m[2]
		return nil
	}
	if *cur == nil {
		return nil // text before the first ### that is not a variable
	}
	if m := nameRe.FindStringSubmatch(trimmed); m != nil {
		(*cur).name = m[1]
		return nil
	}
	if m := expectRe.FindStringSubmatch(trimmed); m != nil {
		for _, f := range strings.Fields(m[1]) {
			if f == "or" {
				continue
			}
			code, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("line %d: bad Expect status %q", n, f)
			}
			(*cur).expect = append((*cur).expect, code)
		}
		return nil
	}
	if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "//") {
		return nil
	}

	fields := strings.Fields(trimmed)
	if len(fields) < 2 {
		return fmt.Errorf("line %d: want METHOD URL, got %q", n, trimmed)
	}
	(*cur).method, (*cur).url, (*cur).line = fields[0], fields[1], n
	return nil
}

// namedResponse is what a # @name request left for later references.
type namedResponse struct {
	header map[string][]string
	body   []byte
}

// resolve replaces {{var}} and {{name.response.body.$.path}} /
// {{name.response.headers.Name}} references.
func resolve(s string, vars map[string]string, named map[string]namedResponse) (string, error) {
	var firstErr error
	out := s
	for range 5 { // file variables may refer to each other; bounded
		next := refRe.ReplaceAllStringFunc(out, func(m string) string {
			ref := refRe.FindStringSubmatch(m)[1]
			v, err := lookup(ref, vars, named)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			return v
		})
		if next == out {
			break
		}
		out = next
	}
	return out, firstErr
}

func lookup(ref string, vars map[string]string, named map[string]namedResponse) (string, error) {
	if v, ok := vars[ref]; ok {
		return v, nil
	}
	parts := strings.SplitN(ref, ".", 4)
	if len(parts) < 4 || parts[1] != "response" {
		return "", fmt.Errorf("unknown variable %q", ref)
	}
	res, ok := named[parts[0]]
	if !ok {
		return "", fmt.Errorf("%q refers to request %q, which has not run", ref, parts[0])
	}

	switch parts[2] {
	case "headers":
		return strings.Join(res.header[http2Canonical(parts[3])], ", "), nil
	case "body":
		return jsonPath(res.body, parts[3])
	}
	return "", fmt.Errorf("unsupported reference %q", ref)
}

// http2Canonical canonicalizes a header name the way net/http stores it.
func http2Canonical(name string) string {
	parts := strings.Split(strings.ToLower(name), "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// jsonPath follows a "$.a.b" path into a JSON body.
func jsonPath(body []byte, path string) (string, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("body is not JSON: %w", err)
	}
	for _, key := range strings.Split(strings.TrimPrefix(path, "$."), ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("path %s: %q is not inside an object", path, key)
		}
		v = obj[key]
	}
	switch t := v.(type) {
	case string:
		return t, nil
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), nil
	case nil:
		return "", fmt.Errorf("path %s: no value", path)
	}
	b, _ := json.Marshal(v)
	return string(b), nil
}
