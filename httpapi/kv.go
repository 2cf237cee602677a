package httpapi

import (
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"

	"github.com/keeperhq/keeper"
)

// maxKeysPerRequest bounds how many keys one PUT or POST may create.
const maxKeysPerRequest = 1000

// defaultListLimit is the page size of /api/keys when the client names none.
const defaultListLimit = 100

// entryJSON is the response shape of one key–value pair.
type entryJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// keysPage is the response of GET /api/keys. Next is the cursor for the following page,
// null on the last one.
type keysPage struct {
	Keys []string `json:"keys"`
	Next *string  `json:"next"`
}

// getResult answers GET /api/result?key=K with the value as plain text.
func (a *API) getResult(w http.ResponseWriter, r *http.Request) error {
	key, err := keyParam(r)
	if err != nil {
		return err
	}
	e, err := a.kv.Get(r.Context(), key)
	if err != nil {
		return err
	}

	// One backing array for the four header values saves three allocations on the
	// hottest path; the keys are already in canonical form.
	vals := [4]string{formatETag(e.Version), "no-cache", "text/plain; charset=utf-8",
		strconv.Itoa(len(e.Value))}
	h := w.Header()
	h["Etag"] = vals[0:1:1]
	h["Cache-Control"] = vals[1:2:2]
	if noneMatch(r.Header.Values("If-None-Match"), e.Version) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h["Content-Type"] = vals[2:3:3]
	h["Content-Length"] = vals[3:4:4]
	_, _ = io.WriteString(w, e.Value)
	return nil
}

// putResult answers PUT /api/result?key=K[&key=K2...]: each key is created with an
// empty value, all or none.
func (a *API) putResult(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, "key")
	if err != nil {
		return err
	}
	keys := q["key"]
	if err := checkKeys(keys); err != nil {
		return err
	}

	entries := make([]keeper.Entry, len(keys))
	for i, k := range keys {
		entries[i] = keeper.Entry{Key: k}
	}
	return a.create(w, r, entries)
}

// postResult answers POST /api/result with a JSON object of string pairs to create.
func (a *API) postResult(w http.ResponseWriter, r *http.Request) error {
	body, err := readJSON(w, r)
	if err != nil {
		return err
	}
	entries, err := parsePairs(body, a.maxValue)
	if err != nil {
		return err
	}
	return a.create(w, r, entries)
}

// create stores new entries and answers 201 with the created pairs.
func (a *API) create(w http.ResponseWriter, r *http.Request, entries []keeper.Entry) error {
	created, err := a.kv.Create(r.Context(), entries)
	if err != nil {
		return err
	}

	pairs := make(map[string]string, len(created))
	for _, e := range created {
		pairs[e.Key] = e.Value
	}
	return writeJSON(w, http.StatusCreated, pairs)
}

// patchResult answers PATCH /api/result?key=K with {"value": "..."}, honouring If-Match.
func (a *API) patchResult(w http.ResponseWriter, r *http.Request) error {
	key, err := keyParam(r)
	if err != nil {
		return err
	}
	body, err := readJSON(w, r)
	if err != nil {
		return err
	}
	value, err := parseValue(body, a.maxValue)
	if err != nil {
		return err
	}
	versions := ifMatch(r)

	e, err := a.kv.Update(r.Context(), key, value, versions)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", formatETag(e.Version))
	return writeJSON(w, http.StatusOK, entryJSON{Key: e.Key, Value: e.Value})
}

// deleteResult answers DELETE /api/result?key=K, honouring If-Match.
func (a *API) deleteResult(w http.ResponseWriter, r *http.Request) error {
	key, err := keyParam(r)
	if err != nil {
		return err
	}
	versions := ifMatch(r)

	if err := a.kv.Delete(r.Context(), key, versions); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listKeys answers GET /api/keys?prefix=P&limit=N&after=K with one page of keys.
func (a *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, "prefix", "limit", "after")
	if err != nil {
		return err
	}
	prefix, after, limit, err := listParams(q)
	if err != nil {
		return err
	}

	// One extra key tells whether another page follows.
	keys, err := a.kv.List(r.Context(), prefix, after, limit+1)
	if err != nil {
		return err
	}
	page := keysPage{Keys: keys}
	if len(keys) > limit {
		page.Keys = keys[:limit]
		page.Next = &keys[limit-1]
	}
	if page.Keys == nil {
		page.Keys = []string{}
	}
	return writeJSON(w, http.StatusOK, page)
}

// listParams reads and checks the parameters of /api/keys.
func listParams(q map[string][]string) (prefix, after string, limit int, err error) {
	for _, name := range []string{"prefix", "limit", "after"} {
		if len(q[name]) > 1 {
			return "", "", 0, keeper.Errorf(keeper.CodeInvalidQuery,
				"the %s parameter may be given only once", name)
		}
	}
	if v := q["prefix"]; len(v) == 1 && v[0] != "" {
		prefix = v[0]
		if err := keeper.ValidateKey(prefix); err != nil {
			return "", "", 0, keeper.Errorf(keeper.CodeInvalidQuery, "prefix: %s",
				err.(*keeper.Error).Message)
		}
	}
	if v := q["after"]; len(v) == 1 && v[0] != "" {
		after = v[0]
		if err := keeper.ValidateKey(after); err != nil {
			return "", "", 0, keeper.Errorf(keeper.CodeInvalidQuery, "after: %s",
				err.(*keeper.Error).Message)
		}
	}

	limit = defaultListLimit
	if v := q["limit"]; len(v) == 1 {
		n, convErr := strconv.Atoi(v[0])
		if convErr != nil || n < 1 || n > keeper.MaxListLimit {
			return "", "", 0, keeper.Errorf(keeper.CodeInvalidQuery,
				"limit must be a whole number from 1 to %d, got %s", keeper.MaxListLimit,
				keeper.Quote(v[0]))
		}
		limit = n
	}
	return prefix, after, limit, nil
}

// checkKeys validates the keys named by one PUT.
func checkKeys(keys []string) error {
	if len(keys) == 0 {
		return keeper.Errorf(keeper.CodeInvalidQuery, "the key parameter is required")
	}
	if len(keys) > maxKeysPerRequest {
		return keeper.Errorf(keeper.CodeTooManyKeys, "%d keys in one request; the limit is %d",
			len(keys), maxKeysPerRequest)
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := keeper.ValidateKey(k); err != nil {
			return err
		}
		if seen[k] {
			return keeper.Errorf(keeper.CodeDuplicateKey, "key %s is named twice",
				keeper.Quote(k))
		}
		seen[k] = true
	}
	return nil
}

// formatETag renders a version as a strong entity tag.
func formatETag(version int64) string {
	return `"` + strconv.FormatInt(version, 10) + `"`
}

// ifMatch reads the If-Match header. It returns nil when the header is absent or is
// "*" (the entry must merely exist, which PATCH and DELETE require anyway), and
// otherwise the versions its tags name. RFC 9110 compares tags strongly here: a weak
// tag, or a tag that spells a version otherwise than formatETag ("+17", "017"), never
// matches, so a header naming no version yields a list that matches nothing.
func ifMatch(r *http.Request) []int64 {
	fields := r.Header.Values("If-Match")
	if len(fields) == 0 || isStar(fields) {
		return nil
	}

	versions := []int64{}
	for _, field := range fields {
		for tag := range entityTags(field) {
			if n, ok := tagVersion(tag); ok {
				versions = append(versions, n)
			}
		}
	}
	if len(versions) == 0 {
		versions = append(versions, -1) // no version is negative: matches nothing
	}
	return versions
}

// noneMatch reports whether If-None-Match header fields match the version, using weak
// comparison as RFC 9110 prescribes for it: W/"17" matches "17", W/* matches nothing.
func noneMatch(fields []string, version int64) bool {
	if isStar(fields) {
		return true
	}
	for _, field := range fields {
		for tag := range entityTags(field) {
			if n, ok := tagVersion(strings.TrimPrefix(tag, "W/")); ok && n == version {
				return true
			}
		}
	}
	return false
}

// isStar reports whether a conditional header is "*", which RFC 9110 allows only as its
// whole value; inside a list, or beside another line, it is no tag and matches nothing.
func isStar(fields []string) bool {
	return len(fields) == 1 && strings.TrimSpace(fields[0]) == "*"
}

// entityTags yields the members of an entity-tag list such as `"1", W/"2"` (RFC 9110
// section 8.8.3), trimmed of spaces. A comma inside a tag's quotes does not split it.
func entityTags(list string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for rest := list; rest != ""; {
			end, quoted := 0, false
			for ; end < len(rest) && (quoted || rest[end] != ','); end++ {
				if rest[end] == '"' {
					quoted = !quoted
				}
			}
			if tag := strings.TrimSpace(rest[:end]); tag != "" && !yield(tag) {
				return
			}
			rest = rest[min(end+1, len(rest)):]
		}
	}
}

// tagVersion returns the version a strong entity tag names, if formatETag wrote it.
func tagVersion(tag string) (int64, bool) {
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0, false
	}
	return canonicalInt(tag[1 : len(tag)-1])
}
