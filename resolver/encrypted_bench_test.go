package resolver

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkDoHPostH2 is one DoH POST over a kept-alive HTTP/2 connection
// on loopback, through GuardListener and NewDoHServer to the echo handler.
func BenchmarkDoHPostH2(b *testing.B) {
	f := startDoH(b)
	c := f.client(true, nil)
	wire := packQuery(b, "www.example.org.", dns.TypeA)
	url := "https://" + f.addr + DoHPath
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Post(url, dohContentType, bytes.NewReader(wire))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkDoQ is one DoQ query (a new stream) on an open connection.
func BenchmarkDoQ(b *testing.B) {
	f := startDoQ(b, &DoQServer{})
	c, err := f.dial(b, "dns.test")
	if err != nil {
		b.Fatal(err)
	}
	wire := packQuery(b, "www.example.org.", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := askDoQ(c, wire); err != nil {
			b.Fatal(err)
		}
	}
}
