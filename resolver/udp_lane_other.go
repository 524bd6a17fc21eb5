//go:build !linux

package resolver

import (
	"errors"

	"github.com/dnsward/dnsward/resolver/upstream"
)

// Outside Linux read loops have no lanes: their misses use the forwarder's
// own poller.
type loopPoll struct{}

func newLoopPoll(*udpSocket, *upstream.Lane) (*loopPoll, error) {
	return nil, errors.New("no lanes outside Linux")
}
func (lp *loopPoll) wait(int) bool { return false }
func (lp *loopPoll) stopClients()  {}
func (lp *loopPoll) close()        {}
