package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/dnsward/dnsward/blocklist"
	"github.com/dnsward/dnsward/blocklist/rpzprimary"
	"github.com/dnsward/dnsward/metrics"
)

// startPrimary starts the RPZ primary when rpz_primary is configured. It
// follows the engine's policy by itself; its settings change only at
// restart.
func (a *app) startPrimary() error {
	cfg := a.cfg.Primary
	if !cfg.Enabled() {
		return nil
	}
	baseDir := ""
	if a.cfg.path != "" {
		baseDir = filepath.Dir(a.cfg.path)
	}
	keys, err := blocklist.LoadTSIGKeys(a.cfg.Policy, baseDir)
	if err != nil {
		return err
	}
	key, ok := keys[cfg.TSIG]
	if !ok {
		return fmt.Errorf("rpz_primary.tsig: key %q is not defined under tsig_keys", cfg.TSIG) // Validate caught it
	}
	a.primary, err = rpzprimary.New(cfg, rpzprimary.Options{Policy: a.engine, Key: key, Logger: a.log})
	if err != nil {
		return err
	}
	if err := a.primary.Start(); err != nil {
		a.primary = nil
		return err
	}
	if a.rec != nil {
		p := a.primary
		a.rec.SetPrimaryZonesFunc(func() []metrics.PrimaryZoneState { return primaryZoneStates(p) })
	}
	return nil
}

// stopPrimary stops the RPZ primary, if it runs.
func (a *app) stopPrimary(ctx context.Context) error {
	if a.primary == nil {
		return nil
	}
	return a.primary.Shutdown(ctx)
}

func (a *app) handlePrimary(w http.ResponseWriter, _ *http.Request) {
	if a.primary == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "rpz_primary is not configured"})
		return
	}
	writeJSON(w, http.StatusOK, a.primary.Zones())
}

func primaryZoneStates(p *rpzprimary.Server) []metrics.PrimaryZoneState {
	var out []metrics.PrimaryZoneState
	for _, z := range p.Zones() {
		out = append(out, metrics.PrimaryZoneState{Group: z.Group, Serial: z.Serial, Records: z.Records,
			AXFR: z.Transfers.AXFR, IXFR: z.Transfers.IXFR, IXFRFull: z.Transfers.IXFRFull})
	}
	return out
}

// recordZone reports a list's axfr:// source (a list has at most one).
func recordZone(rec *metrics.Recorder, s blocklist.ListStatus) {
	for _, src := range s.Sources {
		z := src.Zone
		if z == nil {
			continue
		}
		rec.ZoneUpdated(s.Name, metrics.ZoneState{
			Serial: z.Serial, Loaded: z.Loaded, Records: z.Records, LastRefresh: z.LastContact, Expired: z.Expired,
			AXFROK: z.Transfers["axfr"].OK, AXFRFailed: z.Transfers["axfr"].Failed,
			IXFROK: z.Transfers["ixfr"].OK, IXFRFailed: z.Transfers["ixfr"].Failed,
		})
	}
}

// printZones prints the transfer state of a list's axfr:// source for
// dnsward check.
func printZones(w io.Writer, l blocklist.ListStatus) {
	for _, src := range l.Sources {
		z := src.Zone
		if z == nil {
			continue
		}
		serial := "no copy"
		if z.Loaded {
			serial = fmt.Sprintf("serial %d, %d records", z.Serial, z.Records)
		}
		last := "no transfer since start (the saved copy is current)"
		if src.Error != "" {
			last = "no transfer since start"
		}
		if z.LastTransfer != "" {
			last = fmt.Sprintf("last %s %s", strings.ToUpper(z.LastTransfer), z.LastTransferAt.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(w, "    zone %s from %s: %s, %s, next refresh %s\n", z.Zone, z.Primary, serial, last, z.NextRefresh.UTC().Format(time.RFC3339))
		if z.Expired {
			fmt.Fprintf(w, "    EXPIRED: no contact with the primary since %s\n", z.LastContact.UTC().Format(time.RFC3339))
		}
		if src.Error != "" {
			fmt.Fprintf(w, "    last error: %s\n", src.Error)
		}
	}
}

// printPrimary summarises rpz_primary for dnsward check.
func printPrimary(w io.Writer, cfg *fileConfig) {
	p := cfg.Primary
	if !p.Enabled() {
		return
	}
	for _, z := range p.Zones {
		fmt.Fprintf(w, "  rpz_primary zone %s publishes group %s on %s (tsig %s; allow %s; notify %s)\n", z.Name, z.Group,
			strings.Join(p.Listen, ", "), p.TSIG, strings.Join(p.Allow, ", "), strings.Join(p.Notify, ", "))
	}
}
