package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// tapLine is the part of `dnstap -j` output the test reads.
type tapLine struct {
	Identity string `json:"identity"`
	Message  struct {
		Type            string `json:"type"`
		SocketFamily    string `json:"socket_family"`
		SocketProtocol  string `json:"socket_protocol"`
		QueryAddress    string `json:"query_address"`
		ResponseAddress string `json:"response_address"`
		QueryPort       int    `json:"query_port"`
		ResponsePort    int    `json:"response_port"`
		QueryMessage    string `json:"query_message"`
		ResponseMessage string `json:"response_message"`
	} `json:"message"`
}

// startDnstapReader runs the dnstap command-line reader (Debian package
// golang-github-dnstap-golang-dnstap-cli) on a unix socket, writing JSON
// lines to a file, and returns the socket and file paths.
func startDnstapReader(t *testing.T, dir string) (sock, out string) {
	t.Helper()
	bin, err := exec.LookPath("dnstap")
	if err != nil {
		t.Skip("dnstap reader not installed (apt-get install golang-github-dnstap-golang-dnstap-cli)")
	}
	sock, out = filepath.Join(dir, "tap.sock"), filepath.Join(dir, "tap.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-u", sock, "-j", "-w", out)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return sock, out
		}
		select {
		case <-exited:
			t.Fatalf("dnstap reader exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dnstap reader did not create its socket within 5s")
		}
	}
}

// readTap parses the reader's output file so far.
func readTap(t *testing.T, path string) []tapLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var lines []tapLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l tapLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue // a line still being written
		}
		lines = append(lines, l)
	}
	return lines
}

// tapQuery is one query sent: its name and transport as dnstap names it.
type tapQuery struct{ name, proto string }

// TestDnstapToExternalReader sends queries through dnsward with dnstap
// on and checks that the stock dnstap reader receives a CLIENT_QUERY and
// a CLIENT_RESPONSE for each, over UDP and TCP.
func TestDnstapToExternalReader(t *testing.T) {
	a, out := startAppWithDnstap(t)
	sent := []tapQuery{
		sendUDP(t, a, "one.example."),
		sendUDP(t, a, "two.example."),
		sendTCP(t, a, "three.example."),
	}
	checkTapOutput(t, a, out, sent)
}

// TestDnstapCacheHitsToExternalReader: a repeated query answered from the
// cache must reach dnstap like the first one.
func TestDnstapCacheHitsToExternalReader(t *testing.T) {
	a, out := startAppWithDnstap(t)
	sent := []tapQuery{sendUDP(t, a, "again.example."), sendUDP(t, a, "again.example."), sendTCP(t, a, "again.example.")}
	checkTapOutput(t, a, out, sent)
}

func startAppWithDnstap(t *testing.T) (*app, string) {
	t.Helper()
	dir := t.TempDir()
	sock, out := startDnstapReader(t, dir)
	up := startZoneServer(t, nil)
	a := startApp(t, writeConfig(t, dir, up.addr, fmt.Sprintf("dnstap:\n  socket: %q\n  identity: e2e-resolver\n", sock)))
	return a, out
}

func sendUDP(t *testing.T, a *app, name string) tapQuery {
	t.Helper()
	if resp := query(t, "127.0.0.1", a.dnsAddr(), name, dns.TypeA); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("%s over UDP: %v", name, resp)
	}
	return tapQuery{name, "UDP"}
}

func sendTCP(t *testing.T, a *app, name string) tapQuery {
	t.Helper()
	c := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
	if resp, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), a.dnsAddr()); err != nil || len(resp.Answer) != 1 {
		t.Fatalf("%s over TCP: %v %v", name, resp, err)
	}
	return tapQuery{name, "TCP"}
}

// checkTapOutput waits until the reader has written a CLIENT_QUERY and a
// CLIENT_RESPONSE for every query sent, then checks their fields.
func checkTapOutput(t *testing.T, a *app, out string, sent []tapQuery) {
	t.Helper()
	want := map[string]int{}
	for _, q := range sent {
		want[q.name+"/"+q.proto+"/CLIENT_QUERY"]++
		want[q.name+"/"+q.proto+"/CLIENT_RESPONSE"]++
	}
	var lines []tapLine
	for deadline := time.Now().Add(8 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		lines = readTap(t, out)
		got := map[string]int{}
		for _, l := range lines {
			text := l.Message.QueryMessage + l.Message.ResponseMessage
			for _, q := range sent {
				if strings.Contains(text, ";"+q.name+"\tIN\t A\n") && l.Message.SocketProtocol == q.proto {
					got[q.name+"/"+q.proto+"/"+l.Message.Type]++
					break
				}
			}
		}
		if maps.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reader did not get every query within 8s: got %v, want %v; its output:\n%s", got, want, mustRead(out))
		}
	}
	_, port, _ := net.SplitHostPort(a.dnsAddr())
	for _, l := range lines {
		m := l.Message
		if l.Identity != "e2e-resolver" || m.SocketFamily != "INET" || m.QueryAddress != "127.0.0.1" ||
			m.ResponseAddress != "127.0.0.1" || fmt.Sprint(m.ResponsePort) != port || m.QueryPort == 0 {
			t.Errorf("message fields: %+v", l)
		}
		if m.Type == "CLIENT_RESPONSE" && !strings.Contains(m.ResponseMessage, "\tA\t192.0.2.1") {
			t.Errorf("response without the upstream's answer: %s", m.ResponseMessage)
		}
	}
}

func mustRead(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func TestDnstapConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"upstream: {servers: [\"127.0.0.1\"]}\ndnstap:\n  socket: /run/tap.sock\n  tcp: 127.0.0.1:6000\n", "x.yaml:4: dnstap.tcp: "},
		{"upstream: {servers: [\"127.0.0.1\"]}\ndnstap:\n  buffer_size: -5\n", "x.yaml:3: dnstap.buffer_size: "},
		{"upstream: {servers: [\"127.0.0.1\"]}\ndnstap:\n  sokcet: /run/tap.sock\n", `unknown key "sokcet"`},
	} {
		_, err := parseConfig([]byte(tc.yaml), "x.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want it to contain %q", tc.yaml, err, tc.want)
		}
	}
	cfg, err := parseConfig([]byte("upstream: {servers: [\"127.0.0.1\"]}\ndnstap:\n  tcp: 127.0.0.1:6000\n  identity: ns1\n"), "x.yaml", nil)
	if err != nil || cfg.Dnstap.TCP != "127.0.0.1:6000" || cfg.Dnstap.Identity != "ns1" {
		t.Fatalf("valid dnstap config: %+v, %v", cfg, err)
	}
}
