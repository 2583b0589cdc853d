// Package schemas is the contract between the agent and the gateway: the
// plain Go types of the config repository (Config) and of the unit handed to
// the gateway (Bundle), the defaults, and the embedded CUE schema files.
//
// It imports no CUE on purpose: the gateway links these types and must stay
// small. The CUE loader and validator live in the subpackage schemas/load;
// the semantic rules both sides enforce live, CUE-free, in schemas/rules.
package schemas
