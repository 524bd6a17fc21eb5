package blocklist

import (
	"errors"
	"strings"
	"testing"
)

const (
	govToken   = "0123456789abcdef0123456789abcdef" // openssl rand -hex 16 shape
	guestToken = "guest-device-token-0001"
	otherToken = "ffffffffffffffffffffffffffffffff" // well formed, listed nowhere
)

// tokenEngine: gov devices block tiktok, guests do not; both groups are
// chosen by token too, and every address defaults to guest.
func tokenEngine(t testing.TB, unknown string) *Engine {
	t.Helper()
	cfg := Config{
		Lists: map[string]ListConfig{"tiktok": {Sources: []string{"builtin:tiktok"}}},
		Groups: []GroupConfig{
			{Name: "gov-devices", Clients: []string{"10.0.0.0/8"}, Block: []string{"tiktok"}, Tokens: []string{govToken}},
			{Name: "guest", Tokens: []string{guestToken}},
		},
		DefaultGroup: "guest",
		UnknownToken: unknown,
	}
	return newEngine(t, cfg, Options{})
}

func TestValidateToken(t *testing.T) {
	for tok, want := range map[string]string{
		govToken:                    "",
		"a-b-c-d-e-f-g-h-i-j-k":     "",
		strings.Repeat("z", 63):     "",
		"short":                     "needs at least 20",
		strings.Repeat("z", 64):     "at most 63",
		"-0123456789abcdef0123":     "starts or ends with '-'",
		"0123456789abcdef0123-":     "starts or ends with '-'",
		"xn--0123456789abcdef01":    "IDNA",
		"0123456789ABCDEF0123":      `'A'`,
		"0123456789abcdef012/":      `'/'`,
		"0123456789abcdef012.3":     `'.'`,
		"0123456789abcdef0123 ":     `' '`,
		"0123456789abcdef01é23456":  "lower-case letters a-z",
		"0123456789abcdef0123%2e.x": `'%'`,
	} {
		err := ValidateToken(tok)
		switch {
		case want == "" && err != nil:
			t.Errorf("ValidateToken(%q) = %v; want ok", tok, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("ValidateToken(%q) = %v; want an error containing %q", tok, err, want)
		}
	}
}

func TestTokenConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name     string
		edit     func(*Config)
		key, msg string
	}{
		{"short", func(c *Config) { c.Groups[1].Tokens = []string{"secret"} }, "groups[1].tokens[0]", "needs at least 20"},
		{"upper case", func(c *Config) { c.Groups[0].Tokens = append(c.Groups[0].Tokens, strings.ToUpper(otherToken)) }, "groups[0].tokens[1]", "lower-case"},
		{"in two groups", func(c *Config) { c.Groups[1].Tokens = []string{govToken} }, "groups[1].tokens[0]", "already listed at groups[0].tokens[0]"},
		{"twice in a group", func(c *Config) { c.Groups[0].Tokens = []string{govToken, govToken} }, "groups[0].tokens[1]", "already listed at groups[0].tokens[0]"},
		{"bad policy", func(c *Config) { c.UnknownToken = "deny" }, "unknown_token", `"deny" is not "address"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{
				Groups: []GroupConfig{{Name: "a", Tokens: []string{govToken}}, {Name: "b"}},
			}
			tt.edit(&cfg)
			err := cfg.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key() != tt.key || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Validate() = %v; want key %s and %q", err, tt.key, tt.msg)
			}
			for _, g := range cfg.Groups {
				for _, tok := range g.Tokens {
					if len(tok) > 8 && strings.Contains(err.Error(), tok) {
						t.Errorf("the error %q shows a token in full", err)
					}
				}
			}
		})
	}
}

// TestTokenChoosesGroup: two devices behind the same address (a home
// router, a carrier NAT) get their own group's policy.
func TestTokenChoosesGroup(t *testing.T) {
	e := tokenEngine(t, "")
	home := addr("198.51.100.7")
	gov := e.DecideFor(Identity{Client: home, Token: govToken}, "www.tiktok.com.")
	guest := e.DecideFor(Identity{Client: home, Token: guestToken}, "www.tiktok.com.")
	if gov.Action != Block || gov.Group != "gov-devices" || gov.By != ByToken || gov.TokenID != TokenID(govToken) {
		t.Errorf("gov device: %+v", gov)
	}
	if guest.Action != Allow || guest.Group != "guest" || guest.By != ByToken {
		t.Errorf("guest device: %+v", guest)
	}
	// A token beats the address: a guest phone on the office network stays a guest.
	if v := e.DecideFor(Identity{Client: addr("10.1.2.3"), Token: guestToken}, "www.tiktok.com"); v.Action != Allow || v.Group != "guest" {
		t.Errorf("guest token from a gov subnet: %+v", v)
	}
	// Server names are case-insensitive: an upper-cased SNI label still matches.
	if v := e.DecideFor(Identity{Client: home, Token: strings.ToUpper(govToken)}, "www.tiktok.com"); v.Group != "gov-devices" {
		t.Errorf("upper-case token: %+v", v)
	}
	if g, id, ok := e.TokenGroup(govToken); !ok || g != "gov-devices" || id != TokenID(govToken) || len(id) != 8 {
		t.Errorf("TokenGroup = %q %q %v", g, id, ok)
	}
	if _, _, ok := e.TokenGroup(govToken[:25]); ok {
		t.Error("a prefix of a token matched")
	}
	if v := e.Decide(addr("10.1.2.3"), "www.tiktok.com"); v.By != ByAddress || v.TokenID != "" || v.Action != Block {
		t.Errorf("address only: %+v", v)
	}
}

func TestUnknownTokenPolicy(t *testing.T) {
	for _, tt := range []struct {
		policy string
		want   Action
		group  string
	}{{"", Block, "gov-devices"}, {UnknownTokenAddress, Block, "gov-devices"}, {UnknownTokenRefuse, Refuse, ""}} {
		e := tokenEngine(t, tt.policy)
		for _, tok := range []string{otherToken, "x", strings.Repeat("a", 300)} {
			v := e.DecideFor(Identity{Client: addr("10.1.2.3"), Token: tok}, "www.tiktok.com")
			if v.Action != tt.want || v.Group != tt.group || v.By != ByUnknownToken || v.TokenID != "" {
				t.Errorf("unknown_token %q, token len %d: %+v; want %s in %q", tt.policy, len(tok), v, actionName(tt.want), tt.group)
			}
		}
	}
}

func TestExplainToken(t *testing.T) {
	e := tokenEngine(t, "")
	x := e.ExplainFor(Identity{Client: addr("198.51.100.7"), Token: govToken}, "www.tiktok.com")
	id := TokenID(govToken)
	if x.Identity != "token "+id || x.Group != "gov-devices" || x.Action != "block" {
		t.Errorf("explain %+v", x)
	}
	want := "token " + id + " is listed at groups[0].tokens[0], so group gov-devices applies whatever the client address"
	if x.GroupReason != want {
		t.Errorf("group reason %q\nwant         %q", x.GroupReason, want)
	}
	x = e.ExplainFor(Identity{Client: addr("10.9.9.9"), Token: otherToken}, "www.tiktok.com")
	if x.Identity != "client 10.9.9.9" || !strings.Contains(x.GroupReason, "is not listed in any group's tokens, so the client address decides") ||
		!strings.Contains(x.GroupReason, "10.0.0.0/8 (groups[0].clients[0])") {
		t.Errorf("unknown token explain: %+v", x)
	}
	x = tokenEngine(t, UnknownTokenRefuse).ExplainFor(Identity{Client: addr("10.9.9.9"), Token: otherToken}, "example.org")
	if x.Action != "refuse" || !strings.HasPrefix(x.Reason, "refused: token ") {
		t.Errorf("refused explain: %+v", x)
	}
	for _, s := range []string{x.Identity, x.GroupReason, x.Reason} {
		if strings.Contains(s, otherToken) {
			t.Errorf("explain shows the token in full: %q", s)
		}
	}
}

func TestDecideForZeroAlloc(t *testing.T) {
	e := tokenEngine(t, UnknownTokenRefuse)
	home := addr("198.51.100.7")
	upper := strings.ToUpper(guestToken)
	allocs := testing.AllocsPerRun(200, func() {
		e.DecideFor(Identity{Client: home, Token: govToken}, "v16-webapp.tiktok.com.")
		e.DecideFor(Identity{Client: home, Token: upper}, "www.example.org")
		e.DecideFor(Identity{Client: home, Token: otherToken}, "www.example.org")
		e.DecideFor(Identity{Client: home}, "www.example.org")
		e.TokenGroup(govToken)
	})
	if allocs != 0 {
		t.Errorf("DecideFor allocates %.1f times per run; want 0", allocs)
	}
}

func BenchmarkDecideForToken(b *testing.B) {
	e := tokenEngine(b, "")
	id := Identity{Client: addr("198.51.100.7"), Token: govToken}
	b.ReportAllocs()
	for b.Loop() {
		e.DecideFor(id, "v16-webapp.tiktokcdn.com.")
	}
}
