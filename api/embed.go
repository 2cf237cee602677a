// Package api embeds Keeper's API documents so that the server can publish them and the
// tests can hold the server to them.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.0 description of the HTTP API (openapi.yaml).
//
//go:embed openapi.yaml
var OpenAPI []byte

// RESTClient is the REST-client file that walks every endpoint (keeper.http).
//
//go:embed keeper.http
var RESTClient []byte
