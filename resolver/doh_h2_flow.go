package resolver

import "golang.org/x/net/http2"

// HTTP/2 flow control (RFC 9113 §5.2) on the sending side: an answer goes
// out as far as the client's connection and stream windows allow, and
// the rest waits for WINDOW_UPDATE or a larger SETTINGS_INITIAL_WINDOW_SIZE.

// sendBody writes as much of data as the client's windows allow; the
// rest waits in the stream for WINDOW_UPDATE.
func (c *h2Conn) sendBody(st *h2Stream, data []byte) {
	n := int(min(int64(len(data)), max(0, c.sendWindow), max(0, st.sendWindow)))
	for off := 0; off < n; {
		end := min(n, off+c.maxFrame)
		_ = c.fr.WriteData(st.id, end == len(data), data[off:end])
		off = end
	}
	c.sendWindow -= int64(n)
	st.sendWindow -= int64(n)
	if n == len(data) {
		st.pending = st.pending[:0]
		c.finishStream(st)
		return
	}
	if len(st.pending) == 0 {
		c.blocked = append(c.blocked, st)
	}
	st.pending = append(st.pending[:0], data[n:]...)
}

// sendBlocked retries the answers that waited for credit, in order.
func (c *h2Conn) sendBlocked() {
	waiting := c.blocked
	c.blocked = nil
	for _, st := range waiting {
		if st.reset || st.done {
			c.finishStream(st)
			continue
		}
		rest := st.pending
		st.pending = nil // sendBody requeues what still does not fit
		c.sendBody(st, rest)
	}
}

// onSettings applies the client's settings and acknowledges them.
func (c *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.initWindow
			c.initWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
			}
		case http2.SettingMaxFrameSize:
			c.maxFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_ = c.fr.WriteSettingsAck()
	c.sendBlocked()
	return c.countJunk()
}

// onWindowUpdate adds the client's credit and sends what waited for it.
func (c *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	const maxWindow = 1<<31 - 1
	inc := int64(f.Increment)
	switch st := c.streams[f.StreamID]; {
	case f.StreamID == 0:
		if c.sendWindow += inc; c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	case st != nil:
		if st.sendWindow += inc; st.sendWindow > maxWindow {
			return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeFlowControl}
		}
	case f.StreamID > c.lastID:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.sendBlocked()
	return c.countJunk()
}
