//go:build !linux

package upstream

import (
	"errors"
	"time"

	"github.com/miekg/dns"
)

// Lane exists on Linux only; elsewhere NewLane fails and callers use Start.
type Lane struct{}

var errNoLanes = errors.New("upstream: lanes need Linux")

func (f *Forwarder) NewLane() (*Lane, error) { return nil, errNoLanes }
func (l *Lane) Fd() int                      { return -1 }
func (l *Lane) Busy() bool                   { return false }
func (l *Lane) Wait() int                    { return -1 }
func (l *Lane) Process()                     {}
func (l *Lane) Close() error                 { return nil }

// StartOn is Start: there are no lanes here.
func (f *Forwarder) StartOn(_ *Lane, q Query, deadline time.Time, done func(*dns.Msg, error)) {
	f.Start(q, deadline, done)
}
