package blocklist

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestHandleNotifyOutcomes(t *testing.T) {
	p := startTestPrimary(t, "rpz.test", true, "bad.example")
	e := newEngine(t, xfrConfig(p.source(), true), Options{})
	primary := p.addrPort().Addr()
	query := func() []byte {
		m := new(dns.Msg)
		m.SetQuestion("rpz.test.", dns.TypeSOA)
		b, _ := m.Pack()
		return b
	}
	badKey := func() []byte {
		m := new(dns.Msg)
		m.SetNotify("rpz.test.")
		m.SetTsig("other-key.", dns.HmacSHA256, 300, time.Now().Unix())
		b, _, _ := dns.TsigGenerate(m, testSecret, "", false)
		return b
	}
	for _, c := range []struct {
		name     string
		msg      []byte
		from     netip.Addr
		rcode    int // -1: no reply
		tsigErr  uint16
		signedOK bool
	}{
		{"accepted, signed reply", notifyMsg(t, "rpz.test.", testSecret), primary, dns.RcodeSuccess, 0, true},
		{"accepted from the IPv4-mapped form", notifyMsg(t, "RPZ.test.", testSecret), netip.MustParseAddr("::ffff:127.0.0.1"), dns.RcodeSuccess, 0, true},
		{"unknown zone", notifyMsg(t, "other.test.", testSecret), primary, dns.RcodeNotAuth, 0, false},
		{"not from the primary", notifyMsg(t, "rpz.test.", testSecret), netip.MustParseAddr("127.0.0.2"), dns.RcodeRefused, 0, false},
		{"unsigned while a key is set", notifyMsg(t, "rpz.test.", ""), primary, dns.RcodeRefused, 0, false},
		{"wrong secret", notifyMsg(t, "rpz.test.", "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc="), primary, dns.RcodeNotAuth, dns.RcodeBadSig, false},
		{"unknown key name", badKey(), primary, dns.RcodeNotAuth, dns.RcodeBadKey, false},
		{"a query, not a NOTIFY", query(), primary, -1, 0, false},
		{"not DNS", []byte{1, 2, 3}, primary, -1, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := e.HandleNotify(c.msg, c.from)
			if c.rcode < 0 {
				if out != nil {
					t.Fatalf("got a reply; want none")
				}
				return
			}
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatalf("reply does not unpack: %v", err)
			}
			if r.Rcode != c.rcode || !r.Response || r.Opcode != dns.OpcodeNotify {
				t.Errorf("reply rcode %s, response %v, opcode %d; want %s to a NOTIFY", dns.RcodeToString[r.Rcode], r.Response, r.Opcode, dns.RcodeToString[c.rcode])
			}
			ts := r.IsTsig()
			if c.tsigErr != 0 && (ts == nil || ts.Error != c.tsigErr || ts.MAC != "") {
				t.Errorf("TSIG of the reply = %v; want unsigned with error %s", ts, dns.RcodeToString[int(c.tsigErr)])
			}
			if c.signedOK {
				req := new(dns.Msg)
				req.Unpack(c.msg)
				if err := dns.TsigVerify(out, testSecret, req.IsTsig().MAC, false); err != nil {
					t.Errorf("reply signature does not verify: %v", err)
				}
			}
		})
	}
	if len(e.wake) != 1 {
		t.Errorf("%d refreshes queued; want the accepted NOTIFYs to queue one", len(e.wake))
	}
}

func TestXFRConfigErrors(t *testing.T) {
	base := func() Config { return xfrConfig("axfr://192.0.2.1:53/rpz.test", true) }
	for _, c := range []struct {
		name, key string
		edit      func(*Config)
	}{
		{"hostname primary", "lists.rpz.sources[0]", func(c *Config) { setSource(c, "axfr://primary.example/rpz.test") }},
		{"no zone", "lists.rpz.sources[0]", func(c *Config) { setSource(c, "axfr://192.0.2.1:53/") }},
		{"bad port", "lists.rpz.sources[0]", func(c *Config) { setSource(c, "axfr://192.0.2.1:0/rpz.test") }},
		{"undefined key", "lists.rpz.tsig", func(c *Config) { l := c.Lists["rpz"]; l.TSIG = "nope"; c.Lists["rpz"] = l }},
		{"bad algorithm", "tsig_keys.transfer-key.algorithm", func(c *Config) {
			c.TSIGKeys["transfer-key"] = TSIGKeyConfig{Algorithm: "md5", Secret: testSecret}
		}},
		{"secret not base64", "tsig_keys.transfer-key.secret", func(c *Config) { c.TSIGKeys["transfer-key"] = TSIGKeyConfig{Secret: "not base64!"} }},
		{"no secret", "tsig_keys.transfer-key", func(c *Config) { c.TSIGKeys["transfer-key"] = TSIGKeyConfig{} }},
		{"both secrets", "tsig_keys.transfer-key", func(c *Config) {
			c.TSIGKeys["transfer-key"] = TSIGKeyConfig{Secret: testSecret, SecretFile: "k"}
		}},
		{"bad on_expire", "lists.rpz.on_expire", func(c *Config) { l := c.Lists["rpz"]; l.OnExpire = "forget"; c.Lists["rpz"] = l }},
		{"two zones in a list", "lists.rpz.sources", func(c *Config) {
			l := c.Lists["rpz"]
			l.Sources = append(l.Sources, "axfr://192.0.2.2/other.test")
			c.Lists["rpz"] = l
		}},
		{"tsig without a zone", "lists.plain.tsig", func(c *Config) {
			c.Lists["plain"] = ListConfig{Sources: []string{"builtin:tiktok"}, TSIG: "transfer-key"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base()
			c.edit(&cfg)
			err := cfg.Validate()
			ce, ok := err.(*ConfigError)
			if !ok || ce.Key() != c.key {
				t.Errorf("Validate() = %v; want a *ConfigError at %s", err, c.key)
			}
		})
	}
	if ok := base(); ok.Validate() != nil {
		t.Errorf("valid config: %v", ok.Validate())
	}
	cfg := base()
	cfg.TSIGKeys["transfer-key"] = TSIGKeyConfig{SecretFile: "missing.key"}
	if _, err := LoadTSIGKeys(cfg, t.TempDir()); err == nil {
		t.Errorf("LoadTSIGKeys with a missing secret file succeeded")
	} else if ce, ok := err.(*ConfigError); !ok || ce.Key() != "tsig_keys.transfer-key.secret_file" {
		t.Errorf("LoadTSIGKeys error %v; want it at tsig_keys.transfer-key.secret_file", err)
	}
}

func setSource(c *Config, src string) {
	l := c.Lists["rpz"]
	l.Sources = []string{src}
	c.Lists["rpz"] = l
}

func TestXFRSecretFile(t *testing.T) {
	dir := t.TempDir()
	tempFile(t, dir, "transfer.key", testSecret+"\n")
	p := startTestPrimary(t, "rpz.test", true, "bad.example")
	cfg := xfrConfig(p.source(), true)
	cfg.TSIGKeys["transfer-key"] = TSIGKeyConfig{Algorithm: "hmac-sha256", SecretFile: "transfer.key"}
	e := newEngine(t, cfg, Options{BaseDir: dir})
	expect(t, e, "10.0.0.1", "bad.example", Block, "rpz")
}

// FuzzHandleNotify: any bytes from any sender get a reply that unpacks
// as a response to a NOTIFY, or none; never a panic, and the caller's
// buffer is left as it was.
func FuzzHandleNotify(f *testing.F) {
	f.Add(notifyMsg(f, "rpz.test.", testSecret))
	f.Add(notifyMsg(f, "rpz.test.", ""))
	f.Add(notifyMsg(f, "other.test.", testSecret))
	f.Add([]byte{0, 1, 0x20, 0, 0, 1, 0, 0, 0, 0, 0, 1})
	cfg := xfrConfig("axfr://127.0.0.1:53/rpz.test", true)
	e := &Engine{log: quiet(), wake: make(chan string, wakeQueue)}
	xt, err := newXFRTable(cfg, "")
	if err != nil {
		f.Fatal(err)
	}
	e.xfr.Store(xt)
	f.Fuzz(func(t *testing.T, msg []byte) {
		orig := bytes.Clone(msg)
		out := e.HandleNotify(msg, netip.MustParseAddr("127.0.0.1"))
		if !bytes.Equal(msg, orig) {
			t.Fatalf("HandleNotify changed the request bytes")
		}
		for len(e.wake) > 0 {
			e.takeWake(<-e.wake)
		}
		if out == nil {
			return
		}
		r := new(dns.Msg)
		if err := r.Unpack(out); err != nil || !r.Response || r.Opcode != dns.OpcodeNotify {
			t.Fatalf("reply %v (err %v) is not a NOTIFY response", r, err)
		}
	})
}
