package httpapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/keeperhq/keeper"
)

// readObject is the one reader of JSON bodies. It reads body as one JSON object of
// string members: it calls checkName with each name as soon as it is read, then member
// with the name and its value. It walks the tokens itself, because encoding/json would
// smooth over what it refuses:
//
//   - a member name given twice, compared after unescaping: duplicate_key;
//   - a \u escape of a UTF-16 surrogate that is not half of a pair, which encoding/json
//     turns into U+FFFD: invalid_key in a name (unless checkName refused the name
//     first), invalid_value in a value;
//   - a value that is not a string: valueCode;
//   - anything but one object, and trailing data: invalid_request or invalid_json.
func readObject(body []byte, valueCode keeper.Code, checkName func(name string) error,
	member func(name, value string) error) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number too large for float64 is still just "not a string"
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}

	seen := make(map[string]bool)
	for dec.More() {
		name, value, err := nextMember(dec, body, valueCode, checkName, seen)
		if err != nil {
			return err
		}
		if err := member(name, value); err != nil {
			return err
		}
	}

	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return keeper.Errorf(keeper.CodeInvalidJSON, "the body holds more than one JSON value")
	}
	return nil
}

// nextMember reads one member of the object and checks it as readObject says. seen
// holds the names read so far.
func nextMember(dec *json.Decoder, body []byte, valueCode keeper.Code,
	checkName func(string) error, seen map[string]bool) (name, value string, err error) {
	tok, raw, err := nextToken(dec, body)
	if err != nil {
		return "", "", err
	}
	name = tok.(string) // inside an object, encoding/json yields member names as strings
	if err := checkName(name); err != nil {
		return "", "", err
	}
	switch {
	case loneSurrogate(raw):
		return "", "", keeper.Errorf(keeper.CodeInvalidKey,
			"a member name holds a lone surrogate escape, which is not a character")
	case seen[name]:
		return "", "", keeper.Errorf(keeper.CodeDuplicateKey, "%s appears twice",
			keeper.Quote(name))
	}
	seen[name] = true

	tok, raw, err = nextToken(dec, body)
	if err != nil {
		return "", "", err
	}
	value, ok := tok.(string)
	switch {
	case !ok:
		return "", "", keeper.Errorf(valueCode, "the value of %s must be a string, got %s",
			keeper.Quote(name), tokenKind(tok))
	case loneSurrogate(raw):
		return "", "", keeper.Errorf(keeper.CodeInvalidValue,
			"the value of %s holds a lone surrogate escape, which is not a character",
			keeper.Quote(name))
	}
	return name, value, nil
}

// nextToken reads one token and returns it with the bytes of body it was read from (the
// token, after any separator and space).
func nextToken(dec *json.Decoder, body []byte) (json.Token, []byte, error) {
	start := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, tokenError(err)
	}
	return tok, body[start:dec.InputOffset()], nil
}

// loneSurrogate reports whether raw, a JSON string token as the body spells it, has a
// \u escape of a UTF-16 surrogate (U+D800–U+DFFF) that is not the high half followed
// by the low half of a pair. The tokenizer has already checked every escape is whole.
func loneSurrogate(raw []byte) bool {
	for {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return false
		}
		esc := raw[i+1:]
		raw = esc[1:]
		if esc[0] != 'u' {
			continue // \" \\ \/ \b \f \n \r \t
		}
		r := escapedRune(esc[1:5])
		raw = esc[5:]
		if !utf16.IsSurrogate(r) {
			continue
		}
		if len(raw) < 6 || raw[0] != '\\' || raw[1] != 'u' ||
			utf16.DecodeRune(r, escapedRune(raw[2:6])) == utf8.RuneError {
			return true
		}
		raw = raw[6:]
	}
}

// escapedRune decodes the four hex digits of a \u escape.
func escapedRune(digits []byte) rune {
	var b [2]byte
	_, _ = hex.Decode(b[:], digits) // checked by the tokenizer
	return rune(b[0])<<8 | rune(b[1])
}

// parsePairs reads the body of POST /api/result: one JSON object whose members are
// distinct valid keys with string values.
func parsePairs(body []byte, maxValue int) ([]keeper.Entry, error) {
	var entries []keeper.Entry
	err := readObject(body, keeper.CodeInvalidValue, keeper.ValidateKey,
		func(key, value string) error {
			if err := keeper.ValidateValue(value, maxValue); err != nil {
				return err
			}
			if len(entries) == maxKeysPerRequest {
				return keeper.Errorf(keeper.CodeTooManyKeys,
					"more than %d pairs in one request", maxKeysPerRequest)
			}
			entries = append(entries, keeper.Entry{Key: key, Value: value})
			return nil
		})
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, keeper.Errorf(keeper.CodeInvalidRequest, "the object holds no pairs")
	}
	return entries, nil
}

// parseValue reads the body of PATCH /api/result, {"value":"…"}, and returns the value.
// Like a value of POST /api/result, it must be a string: anything else is
// invalid_value.
func parseValue(body []byte, maxValue int) (string, error) {
	var value *string
	onlyValue := func(name string) error {
		if name != "value" {
			return unknownField(name)
		}
		return nil
	}
	err := readObject(body, keeper.CodeInvalidValue, onlyValue, func(_, v string) error {
		value = &v
		return nil
	})
	if err != nil {
		return "", err
	}
	if value == nil {
		return "", keeper.Errorf(keeper.CodeInvalidRequest, "field \"value\" is required")
	}
	return *value, keeper.ValidateValue(*value, maxValue)
}

// unknownField is the error of a member name a body does not accept.
func unknownField(name string) error {
	return keeper.Errorf(keeper.CodeUnknownField, "unknown field %s", keeper.Quote(name))
}

// expectDelim reads one token and requires it to be the given delimiter.
func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return tokenError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		if want == '{' {
			return keeper.Errorf(keeper.CodeInvalidRequest,
				"the body must be a JSON object, got %s", tokenKind(tok))
		}
		return keeper.Errorf(keeper.CodeInvalidJSON, "malformed JSON")
	}
	return nil
}

// tokenError turns a tokenizer error into a client-safe domain error.
func tokenError(err error) error {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return keeper.Errorf(keeper.CodeInvalidJSON, "malformed JSON at byte %d", syntax.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return keeper.Errorf(keeper.CodeInvalidJSON, "the JSON body ends too early")
	}
	return keeper.Errorf(keeper.CodeInvalidJSON, "malformed JSON")
}

// tokenKind names the JSON type of a token for error messages.
func tokenKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return "an object"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case nil:
		return "null"
	}
	return "a string"
}
