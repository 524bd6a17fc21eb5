package metrics

// RetainsQName reports whether Query keeps ev.QName after it returns (the
// audit log does; the top-blocked counter copies the bytes). Callers that
// pass a borrowed string, such as the resolver's UDP fast path, copy it
// first when true.
func (r *Recorder) RetainsQName(ev *QueryEvent) bool {
	return r.audit != nil && (r.audit.all || ev.Outcome == OutcomeBlocked || ev.Monitored)
}
