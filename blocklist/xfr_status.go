package blocklist

import (
	"maps"
	"time"
)

// ZoneStatus is the state of an axfr:// source, for /v1/lists, dnsward
// check and metrics.
type ZoneStatus struct {
	Zone    string `json:"zone"`
	Primary string `json:"primary"`
	// Serial is the SOA serial of the copy in use; Loaded is false when
	// there is none (Serial is then 0).
	Serial  uint32 `json:"serial"`
	Loaded  bool   `json:"loaded"`
	Records int    `json:"records"` // records of the copy in use, SOA included
	// LastTransfer is "axfr" or "ixfr": how the copy in use arrived.
	LastTransfer   string    `json:"last_transfer,omitempty"`
	LastTransferAt time.Time `json:"last_transfer_at,omitzero"`
	// LastContact is when a refresh last succeeded (the primary's serial
	// matched ours, or a transfer was accepted); expiry counts from it.
	LastContact time.Time `json:"last_contact,omitzero"`
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	Expired     bool      `json:"expired"`
	// Transfers counts attempts since start, by "axfr" and "ixfr".
	Transfers map[string]TransferCounts `json:"transfers"`
}

func (s *source) zoneStatus() *ZoneStatus {
	if s.kind != sourceXFR {
		return nil
	}
	z := &ZoneStatus{NextRefresh: s.nextFetch, Transfers: map[string]TransferCounts{"axfr": {}, "ixfr": {}}}
	if src, err := parseXFRSource(s.spec); err == nil {
		z.Zone, z.Primary = src.zone, src.primary.String()
	}
	st := s.xfr
	if st == nil {
		return z
	}
	if st.soa != nil {
		z.Serial, z.Loaded, z.Records = st.soa.Serial, true, st.records
		if !st.lastContact.IsZero() {
			z.ExpiresAt = st.lastContact.Add(time.Duration(st.soa.Expire) * time.Second)
		}
	}
	z.LastTransfer, z.LastTransferAt = st.lastTransfer, st.lastTransferAt
	z.LastContact, z.Expired = st.lastContact, st.expired
	for k, c := range maps.All(st.transfers) {
		z.Transfers[k] = *c
	}
	return z
}
