// Package metrics is dnsward's observability: Prometheus collectors fed by
// typed calls from the resolver (Recorder), the top blocked names and
// clients (TopCounter), the JSON-lines audit log (AuditLog) and the admin
// HTTP listener (Admin) serving /metrics, /healthz, /readyz,
// /v1/stats/top and the handlers cmd/dnsward hands in. With admin.token
// set, every admin path but /healthz, /readyz and /metrics needs it as a
// bearer token (admin_auth.go); without one the listener stays on loopback.
//
// Labels come only from bounded sets: config-defined group, list and
// upstream names (capped at 256 values each, extras become "other"), a
// fixed qtype allowlist, rcodes and outcomes. Query names and client
// addresses never become labels; they go to the top counter and the audit
// log, both fed without blocking the query path.
package metrics
