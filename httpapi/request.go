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
				"unknown query parameter %q", name)
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
			return "", keeper.Errorf(keeper.CodeInvalidQuery, "unknown query parameter %q", name)
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

// requireJSON refuses a body whose Content-Type is not application/json in UTF-8.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return keeper.Errorf(keeper.CodeUnsupportedMedia,
			"Content-Type must be application/json, got %q", ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return keeper.Errorf(keeper.CodeUnsupportedMedia, "charset must be utf-8, got %q", cs)
	}
	return nil
}

// readBody reads the whole body, which limitBody has already capped, and checks that it
// is UTF-8 (a JSON text must be, and the decoder would otherwise replace bad bytes
// silently).
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, keeper.Errorf(keeper.CodeBodyTooLarge,
			"the body is over the limit of %d bytes", tooBig.Limit)
	case err != nil:
		return nil, keeper.Errorf(keeper.CodeInvalidRequest, "reading the body failed")
	case len(bytes.TrimSpace(body)) == 0:
		return nil, keeper.Errorf(keeper.CodeInvalidJSON, "the body is empty")
	case !utf8.Valid(body):
		return nil, keeper.Errorf(keeper.CodeInvalidJSON, "the body is not valid UTF-8")
	}
	return body, nil
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

// decodeJSON reads a JSON object body into v, a pointer to a struct, strictly: the
// media type, fields v does not declare (matched exactly, not case-insensitively as
// encoding/json would), wrong types and trailing data are all errors with their own
// codes.
func decodeJSON(r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}

	var fields map[string]json.RawMessage
	if err := unmarshalOne(body, &fields); err != nil {
		return err
	}
	if fields == nil {
		return keeper.Errorf(keeper.CodeInvalidRequest, "the body must be a JSON object")
	}
	known := jsonFields(reflect.TypeOf(v).Elem())
	for name := range fields {
		if !known[name] {
			return keeper.Errorf(keeper.CodeUnknownField, "unknown field %q", name)
		}
	}
	return unmarshalOne(body, v)
}

// unmarshalOne decodes exactly one JSON value from body into v.
func unmarshalOne(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return keeper.Errorf(keeper.CodeInvalidJSON, "the body holds more than one JSON value")
	}
	return nil
}

// fieldCache holds the JSON field names of request types, computed once per type.
var fieldCache sync.Map // reflect.Type -> map[string]bool

// jsonFields returns the JSON names of a struct type's exported fields.
func jsonFields(t reflect.Type) map[string]bool {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := make(map[string]bool, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = true
	}
	fieldCache.Store(t, m)
	return m
}

// jsonError turns an encoding/json error into a client-safe domain error.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return keeper.Errorf(keeper.CodeInvalidJSON, "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return keeper.Errorf(keeper.CodeInvalidRequest, "field %q must be %s, got %s",
			typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &typ):
		return keeper.Errorf(keeper.CodeInvalidRequest, "the body must be a JSON object, got %s",
			typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return keeper.Errorf(keeper.CodeInvalidJSON, "the JSON body ends too early")
	}
	return keeper.Errorf(keeper.CodeInvalidJSON, "malformed JSON")
}

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "a number"
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
