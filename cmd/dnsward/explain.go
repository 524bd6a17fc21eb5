package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/dnsward/dnsward/blocklist"
)

// explainCmd answers "why does this name (not) resolve for this device?"
// from the config and its lists, without a running server. An IP address
// instead of a name is explained as an address in an answer (A/AAAA), as
// response-IP policy (CIDR lists, RPZ rpz-ip triggers) judges it.
func explainCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file (default: the embedded default config)")
	client := fs.String("client", "0.0.0.0", "client IP address the query comes from")
	token := fs.String("token", "", "device token the query carries (DoH path or DoT/DoQ server name)")
	asJSON := fs.Bool("json", false, "print the full explanation as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: dnsward explain [-config FILE] [-client IP] [-token T] [-json] NAME|ADDRESS")
		return 2
	}
	addr, err := netip.ParseAddr(*client)
	if err != nil {
		fmt.Fprintf(stderr, "dnsward explain: -client %q is not an IP address\n", *client)
		return 2
	}
	cfg, err := loadConfigFile(*path, resolvConfPaths)
	if err != nil {
		fmt.Fprintln(stderr, "dnsward:", err)
		return 1
	}
	engine, err := newEngineForCLI(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintln(stderr, "dnsward:", err)
		return 1
	}
	ex := engine.ExplainFor(blocklist.Identity{Client: addr, Token: *token}, fs.Arg(0))
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(ex)
		return 0
	}
	printExplanation(stdout, ex)
	return 0
}

// printExplanation lays the decision out for a person reading a terminal.
func printExplanation(w io.Writer, ex blocklist.Explanation) {
	what := ex.Name
	if ex.Type == "address" {
		what = "answer address " + ex.Name
	}
	who := "client " + ex.Client
	if id := ex.Identity; id != "" && id != who {
		who = id + " from client " + ex.Client
	}
	fmt.Fprintf(w, "%s for %s\n", what, who)
	group := ex.Group
	if group == "" {
		group = "(none)"
	}
	fmt.Fprintf(w, "  group:    %s — %s\n", group, ex.GroupReason)
	for _, l := range ex.Lists {
		line := "no rule matches"
		if l.Match != nil {
			line = "matches " + ruleRef(l.Match)
		}
		if l.Exception != nil {
			line += "; exception " + ruleRef(l.Exception)
		}
		mark := " "
		if l.Decided {
			mark = "*"
		}
		fmt.Fprintf(w, "  %s %-8s %-24s %s\n", mark, l.Role, l.List, line)
	}
	fmt.Fprintf(w, "  decision: %s — %s\n", strings.ToUpper(ex.Action), ex.Reason)
	if ex.LocalData != "" {
		fmt.Fprintf(w, "  answer:   %s\n", ex.LocalData)
	}
}

func ruleRef(r *blocklist.RuleRef) string {
	rule := "rule " + r.Rule
	if r.Covers != "" && r.Covers != "the name and below" {
		rule += " [" + r.Covers + "]"
	}
	if r.Source == "" {
		return rule
	}
	return fmt.Sprintf("%s (%s line %d)", rule, r.Source, r.Line)
}
