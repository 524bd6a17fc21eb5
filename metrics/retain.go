package metrics

// RetainsQName reports whether Query keeps ev.QName after it returns (for
// the top-blocked counter or the audit log). Callers that pass a borrowed
// string, such as the resolver's UDP fast path, copy it first when true.
func (r *Recorder) RetainsQName(ev *QueryEvent) bool {
	if ev.Outcome == OutcomeBlocked || ev.Monitored {
		return true
	}
	return r.audit != nil && r.audit.all
}
