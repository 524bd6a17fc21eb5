package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestZoneMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := New(reg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	r.zones.now = func() time.Time { return now }
	r.ZoneUpdated("qld", ZoneState{Serial: 42, Loaded: true, Records: 1500002, LastRefresh: now.Add(-90 * time.Second),
		AXFROK: 1, IXFROK: 3, IXFRFailed: 1, Expired: true})
	r.SetPrimaryZonesFunc(func() []PrimaryZoneState {
		return []PrimaryZoneState{{Group: "managed", Serial: 7, Records: 10, AXFR: 2, IXFR: 5}}
	})
	gathered, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	mfs := map[string]*dto.MetricFamily{}
	for _, mf := range gathered {
		mfs[mf.GetName()] = mf
	}
	for _, c := range []struct {
		name   string
		labels L
		want   float64
	}{
		{"dnsward_zone_serial", L{"list": "qld"}, 42},
		{"dnsward_zone_records", L{"list": "qld"}, 1500002},
		{"dnsward_zone_seconds_since_refresh", L{"list": "qld"}, 90},
		{"dnsward_zone_expired", L{"list": "qld"}, 1},
		{"dnsward_zone_transfers_total", L{"list": "qld", "type": "axfr", "outcome": "success"}, 1},
		{"dnsward_zone_transfers_total", L{"list": "qld", "type": "axfr", "outcome": "failure"}, 0},
		{"dnsward_zone_transfers_total", L{"list": "qld", "type": "ixfr", "outcome": "success"}, 3},
		{"dnsward_zone_transfers_total", L{"list": "qld", "type": "ixfr", "outcome": "failure"}, 1},
		{"dnsward_rpz_primary_serial", L{"group": "managed"}, 7},
		{"dnsward_rpz_primary_records", L{"group": "managed"}, 10},
		{"dnsward_rpz_primary_transfers_total", L{"group": "managed", "type": "ixfr"}, 5},
		{"dnsward_rpz_primary_transfers_total", L{"group": "managed", "type": "ixfr_full"}, 0},
	} {
		if got := value(t, mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v; want %v", c.name, c.labels, got, c.want)
		}
	}
}
