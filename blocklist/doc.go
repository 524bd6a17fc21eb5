// Package blocklist is dnsward's policy engine: it reads lists in every
// common format (plain names, hosts files, adblock, dnsmasq, RPZ) from
// built-in data, files and URLs, compiles them into one compact index,
// maps clients to groups by network, and decides per client and name
// whether to allow, block or monitor, saying which list, rule and source
// line decided (Explain).
//
// A compiled policy is an immutable snapshot that Decide reads without
// locks; reloads and list refreshes build a new one off the query path and
// swap it in whole. A source that fails keeps its last good content (on
// disk for URL sources), so a broken list server never empties a list.
//
// Decide does not keep the name it is given: callers may pass a string
// that borrows a buffer they overwrite with the next query. The strings
// of a Verdict point into the snapshot and stay valid after the call.
//
// The package imports nothing else of dnsward's.
package blocklist
