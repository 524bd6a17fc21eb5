package blocklist

// GroupOf is the group whose policy applies to id, without looking at a
// name ("" when the client is in no group, or its token is refused): for
// limits that differ by group, asked before any name is. It allocates
// nothing.
func (e *Engine) GroupOf(id Identity) string {
	s := e.snap.Load()
	c := s.chooseGroup(id)
	if c.group < 0 {
		return ""
	}
	return s.groups.groups[c.group].name
}
