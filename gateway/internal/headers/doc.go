// Package headers holds the data plane's rules about request header names
// that more than one layer applies: which client headers CGI-style servers
// read under the same name as a header the gateway sets, and which headers
// a client's Connection header may remove. Policies and the proxy call it so
// that the rule lives in one place.
package headers
