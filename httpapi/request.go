package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/keeperhq/keeper"
)

// parseQuery parses the raw query strictly: a malformed escape or a parameter outside
// allowed is an error rather than something silently dropped.
func parseQuery(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, keeper.Errorf(keeper.CodeInvalidQuery, "the query string is malformed")
	}
	for name := range q {
		if !contains(allowed, name) {
			return nil, keeper.Errorf(keeper.CodeInvalidQuery,
				"unknown query parameter %s", keeper.Quote(name))
		}
	}
	return q, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// oneParam returns the single value of a parameter; ok is false when it is absent.
func oneParam(q url.Values, name string) (value string, ok bool, err error) {
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	default:
		return "", false, keeper.Errorf(keeper.CodeInvalidQuery,
			"the %s parameter may be given only once", name)
	}
}

// keyParam returns the one valid key that a request names with ?key=. It scans the
// raw query itself rather than building a url.Values map: this runs on every read, and
// the rules are the same as parseQuery's (no other parameter, no malformed escape).
func keyParam(r *http.Request) (string, error) {
	raw := r.URL.RawQuery
	var key string
	found := false
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(name)
		value, err2 := url.QueryUnescape(value)
		switch {
		case err1 != nil || err2 != nil || strings.Contains(pair, ";"):
			return "", keeper.Errorf(keeper.CodeInvalidQuery, "the query string is malformed")
		case name != "key":
			return "", keeper.Errorf(keeper.CodeInvalidQuery, "unknown query parameter %s",
				keeper.Quote(name))
		case found:
			return "", keeper.Errorf(keeper.CodeInvalidQuery,
				"the key parameter may be given only once")
		}
		key, found = value, true
	}

	if !found {
		return "", keeper.Errorf(keeper.CodeInvalidQuery, "the key parameter is required")
	}
	return key, keeper.ValidateKey(key)
}

// noQuery wraps the handler of a call that takes no query parameters: any is refused.
func noQuery(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := parseQuery(r); err != nil {
			return err
		}
		return h(w, r)
	}
}

// noBody wraps the handler of a call that takes no body: one is refused.
func noBody(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := requireNoBody(r); err != nil {
			return err
		}
		return h(w, r)
	}
}

// noInput wraps the handler of a call that takes neither query parameters nor a body.
func noInput(h handlerFunc) handlerFunc {
	return noQuery(noBody(h))
}

// requireNoBody refuses a body on a call that takes none, so that a client who expects
// a body to be applied learns at once that it is not.
func requireNoBody(r *http.Request) error {
	if r.ContentLength > 0 {
		return keeper.Errorf(keeper.CodeInvalidRequest, "this call takes no body")
	}
	if r.ContentLength < 0 && r.Body != nil {
		var b [1]byte
		if n, _ := r.Body.Read(b[:]); n > 0 {
			return keeper.Errorf(keeper.CodeInvalidRequest, "this call takes no body")
		}
	}
	return nil
}

// requireMediaType refuses a body that is not of media type want in UTF-8, whose type
// is ambiguous (Content-Type given more than once), or that comes in a content coding:
// the server decodes none, so it answers 415 with Accept-Encoding: identity, as RFC 9110
// section 12.5.3 suggests, rather than read compressed bytes as the body.
func requireMediaType(w http.ResponseWriter, r *http.Request, want string) error {
	if n := len(r.Header.Values("Content-Type")); n > 1 {
		return keeper.Errorf(keeper.CodeInvalidRequest,
			"Content-Type is given %d times; send it once", n)
	}
	if coding := contentCoding(r); coding != "" {
		w.Header().Set("Accept-Encoding", "identity")
		return keeper.Errorf(keeper.CodeUnsupportedMedia,
			"Content-Encoding %s is not supported; send the body uncoded", keeper.Quote(coding))
	}

	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
		return keeper.Errorf(keeper.CodeUnsupportedMedia, "Content-Type must be %s, got %s",
			want, keeper.Quote(ct))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return keeper.Errorf(keeper.CodeUnsupportedMedia, "charset must be utf-8, got %s",
			keeper.Quote(cs))
	}
	return nil
}

// contentCoding returns the first content coding of the request's Content-Encoding
// other than identity, or "" when there is none.
func contentCoding(r *http.Request) string {
	for _, field := range r.Header.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(field, ",") {
			coding = strings.TrimSpace(coding)
			if coding != "" && !strings.EqualFold(coding, "identity") {
				return coding
			}
		}
	}
	return ""
}

// readBody reads the whole body, which limitBody has already capped.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, keeper.Errorf(keeper.CodeBodyTooLarge,
			"the body is over the limit of %d bytes", tooBig.Limit)
	case err != nil:
		return nil, keeper.Errorf(keeper.CodeInvalidRequest, "reading the body failed")
	}
	return body, nil
}

// readJSON reads a JSON body and checks that it is there and is UTF-8 (a JSON text
// must be, and the decoder would otherwise replace bad bytes silently).
func readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := requireMediaType(w, r, "application/json"); err != nil {
		return nil, err
	}
	body, err := readBody(r)
	switch {
	case err != nil:
		return nil, err
	case len(bytes.TrimSpace(body)) == 0:
		return nil, keeper.Errorf(keeper.CodeInvalidJSON, "the body is empty")
	case !utf8.Valid(body):
		return nil, keeper.Errorf(keeper.CodeInvalidJSON, "the body is not valid UTF-8")
	}
	return body, nil
}

// decodeJSON reads a JSON object body into v, a pointer to a struct of string fields,
// through readObject. A member is matched to the field whose json tag names it exactly
// (not case-insensitively, as encoding/json would); any other member is unknown_field,
// and a value that is not a string is invalid_request.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readJSON(w, r)
	if err != nil {
		return err
	}

	s := reflect.ValueOf(v).Elem()
	fields := jsonFields(s.Type())
	known := func(name string) error {
		if _, ok := fields[name]; !ok {
			return unknownField(name)
		}
		return nil
	}
	return readObject(body, keeper.CodeInvalidRequest, known, func(name, value string) error {
		s.Field(fields[name]).SetString(value)
		return nil
	})
}

// fieldCache holds the field indexes of request types by JSON name, computed once per
// type.
var fieldCache sync.Map // reflect.Type -> map[string]int

// jsonFields maps the JSON names of a struct type's exported fields to their indexes.
func jsonFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}

// canonicalInt parses a positive decimal number written the one way
// strconv.FormatInt writes it: digits only, no sign, no leading zero. Two such numbers
// are equal exactly when their texts are, so "+17" and "017" are not 17.
func canonicalInt(s string) (int64, bool) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// writeJSON sends v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	body = append(body, '\n')

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}
