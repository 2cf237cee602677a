package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/keeperhq/keeper"
)

// parsePairs reads the body of POST /api/result: one JSON object whose members are
// distinct valid keys with string values. It walks the tokens itself because a map
// decode would silently keep the last of two equal keys and accept any value type.
func parsePairs(body []byte, maxValue int) ([]keeper.Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}

	var entries []keeper.Entry
	seen := make(map[string]bool)
	for dec.More() {
		e, err := nextPair(dec, maxValue)
		if err != nil {
			return nil, err
		}
		if seen[e.Key] {
			return nil, keeper.Errorf(keeper.CodeDuplicateKey, "key %q appears twice", e.Key)
		}
		seen[e.Key] = true
		if len(entries) == maxKeysPerRequest {
			return nil, keeper.Errorf(keeper.CodeTooManyKeys,
				"more than %d pairs in one request", maxKeysPerRequest)
		}
		entries = append(entries, e)
	}

	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, keeper.Errorf(keeper.CodeInvalidJSON, "the body holds more than one JSON value")
	}
	if len(entries) == 0 {
		return nil, keeper.Errorf(keeper.CodeInvalidRequest, "the object holds no pairs")
	}
	return entries, nil
}

// nextPair reads one member of the object and validates it.
func nextPair(dec *json.Decoder, maxValue int) (keeper.Entry, error) {
	tok, err := dec.Token()
	if err != nil {
		return keeper.Entry{}, tokenError(err)
	}
	key := tok.(string) // inside an object, encoding/json yields member names as strings
	if err := keeper.ValidateKey(key); err != nil {
		return keeper.Entry{}, err
	}

	tok, err = dec.Token()
	if err != nil {
		return keeper.Entry{}, tokenError(err)
	}
	value, ok := tok.(string)
	if !ok {
		return keeper.Entry{}, keeper.Errorf(keeper.CodeInvalidValue,
			"the value of key %q must be a string, got %s", key, tokenKind(tok))
	}
	if err := keeper.ValidateValue(value, maxValue); err != nil {
		return keeper.Entry{}, err
	}
	return keeper.Entry{Key: key, Value: value}, nil
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
	if errors.Is(err, io.EOF) {
		return keeper.Errorf(keeper.CodeInvalidJSON, "the JSON body ends too early")
	}
	return jsonError(err)
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
	case float64, json.Number:
		return "a number"
	case nil:
		return "null"
	}
	return "a string"
}
