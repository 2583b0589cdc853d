// Package headers holds the data plane's rules about request header names
// that more than one layer applies: which client headers CGI-style servers
// read under the same name as a header the gateway sets, and which headers
// a client's Connection header may remove, and what a field name is (a
// token, in canonical form or not), which both HTTP/1.1 parsers apply,
// and how large a pooled header map may grow and still be reused.
// Policies, the proxy and the parsers call it so that each rule lives in
// one place.
package headers
