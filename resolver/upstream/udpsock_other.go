//go:build !linux

package upstream

import "net/netip"

func dialFreshUDP(addr netip.AddrPort) (udpConn, error) { return dialNetUDP(addr) }
