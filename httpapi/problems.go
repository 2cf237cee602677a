package httpapi

import (
	"html/template"
	"net/http"

	"github.com/keeperhq/keeper"
)

// codeDoc explains one error code on its problem page.
type codeDoc struct {
	Title string
	About string
}

// codeDocs is the public description of every code a client can receive.
var codeDocs = map[keeper.Code]codeDoc{
	keeper.CodeInvalidRequest: {
		"Invalid request",
		"The request is missing input or has input of the wrong form.",
	},
	keeper.CodeInvalidJSON: {
		"Malformed JSON",
		"The body is not one well-formed JSON document of the expected type.",
	},
	keeper.CodeInvalidQuery: {
		"Invalid query parameter",
		"A query parameter is missing, repeated, unknown, or has a bad value.",
	},
	keeper.CodeUnknownField: {
		"Unknown field",
		"The JSON body has a field this endpoint does not accept. Nothing was applied.",
	},
	keeper.CodeValidation: {
		"Validation failed",
		"One or more fields are invalid; the errors list names each field.",
	},
	keeper.CodeInvalidKey: {
		"Invalid key",
		"Keys are 1–256 bytes of UTF-8 without control characters.",
	},
	keeper.CodeInvalidValue: {
		"Invalid value",
		"Values must be JSON strings of valid UTF-8.",
	},
	keeper.CodeTooManyKeys: {
		"Too many keys",
		"One request may name at most 1000 keys.",
	},
	keeper.CodeDuplicateKey: {
		"Duplicate key",
		"The same key, JSON member name or form field appears twice in one request.",
	},
	keeper.CodeKeyNotFound: {
		"Key not found",
		"No entry has this key.",
	},
	keeper.CodeKeyExists: {
		"Key exists",
		"A key to be created is already present. Nothing was written.",
	},
	keeper.CodeVersionMismatch: {
		"Version mismatch",
		"If-Match names none of the entry's current version: someone changed it. " +
			"Read it again and retry.",
	},
	keeper.CodeBodyTooLarge: {
		"Body too large",
		"The request body is over the server's limit.",
	},
	keeper.CodeValueTooLarge: {
		"Value too large",
		"A value is over the server's limit.",
	},
	keeper.CodeUnsupportedMedia: {
		"Unsupported media type",
		"The body is not of the media type this endpoint takes (application/json; " +
			"application/x-www-form-urlencoded for the pages' forms), or it has a " +
			"Content-Encoding other than identity, which the server does not decode.",
	},
	keeper.CodeNotFound: {
		"Not found",
		"No route matches this path.",
	},
	keeper.CodeMethodNotAllowed: {
		"Method not allowed",
		"The route exists but not for this method; the Allow header lists those it takes.",
	},
	keeper.CodeNotAcceptable: {
		"Not acceptable",
		"The server cannot produce a representation the Accept header allows.",
	},
	keeper.CodeRateLimited: {
		"Too many requests",
		"Slow down: retry after the number of seconds in Retry-After.",
	},
	keeper.CodeInternal: {
		"Internal error",
		"Something unexpected failed. The request id lets the operators find it in the log.",
	},
	keeper.CodeServiceUnavailable: {
		"Service unavailable",
		"A dependency of the server is unavailable; retry later.",
	},
	keeper.CodeUnauthorized: {
		"Unauthorized",
		"A valid bearer access token is required.",
	},
	keeper.CodeForbidden: {
		"Forbidden",
		"The caller may not do this.",
	},
	keeper.CodeInvalidCredentials: {
		"Invalid credentials",
		"The email or the password is wrong.",
	},
	keeper.CodeAccountNotActivated: {
		"Account not activated",
		"Open the activation link sent by email first, or ask for a new one.",
	},
	keeper.CodeAccountDisabled: {
		"Account disabled",
		"This account has been disabled.",
	},
	keeper.CodeUserNotFound: {
		"User not found",
		"No active user has this id.",
	},
	keeper.CodeTokenInvalid: {
		"Invalid token",
		"The token is unknown or malformed.",
	},
	keeper.CodeTokenExpired: {
		"Token expired",
		"The token is past its expiry; ask for a new one.",
	},
	keeper.CodeTokenUsed: {
		"Token already used",
		"This single-use token has been used already.",
	},
	keeper.CodeTokenRevoked: {
		"Token revoked",
		"This token was revoked.",
	},
	keeper.CodeTokenReused: {
		"Refresh token reused",
		"A rotated refresh token was presented again; its whole family is revoked. Log in again.",
	},
}

// titleOf returns the short title of a code.
func titleOf(code keeper.Code) string {
	if d, ok := codeDocs[code]; ok {
		return d.Title
	}
	return codeDocs[keeper.CodeInternal].Title
}

var problemPage = template.Must(template.New("problem").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Keeper</title></head>
<body><h1>{{.Title}}</h1><p><code>{{.Code}}</code></p><p>{{.About}}</p></body></html>
`))

// problemDoc serves the page that a problem's type URI points to.
func problemDoc(w http.ResponseWriter, r *http.Request) error {
	code := keeper.Code(r.PathValue("code"))
	doc, ok := codeDocs[code]
	if !ok {
		return keeper.Errorf(keeper.CodeNotFound, "no problem type %s", keeper.Quote(string(code)))
	}

	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return problemPage.Execute(w, struct {
		codeDoc
		Code keeper.Code
	}{doc, code})
}
