package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestTLSCertificateMustMatchName(t *testing.T) {
	dotAddr, _, cert := startTLS(t, serve(zone))
	for name, c := range map[string]struct {
		server string
		opts   Options
	}{
		"wrong name":     {"tls://wrong.test@" + dotAddr, Options{TLSConfig: trust(cert)}},
		"untrusted root": {"tls://dns.test@" + dotAddr, Options{}},
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			c.opts.Observer = rec
			f := newForwarder(t, Config{Servers: []string{c.server}}, c.opts)
			_, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA))
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("err = %v, want a certificate error", err)
			}
			if rec.resultCount(c.server+" error") != 1 {
				t.Errorf("observer saw %v", rec.results)
			}
		})
	}
}

func TestDoHRejectsBadHTTPAnswers(t *testing.T) {
	handlers := map[string]http.HandlerFunc{
		"status 500": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream broke", http.StatusInternalServerError)
		},
		"text/html": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>captive portal</html>"))
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewTLSServer(h)
			defer srv.Close()
			rec := &recorder{}
			f := newForwarder(t, Config{Servers: []string{srv.URL + "/dns-query"}},
				Options{Observer: rec, HTTPClient: srv.Client()})
			if _, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA)); err == nil {
				t.Fatal("want an error")
			}
			if rec.resultCount(srv.URL+"/dns-query error") != 1 {
				t.Errorf("observer saw %v", rec.results)
			}
		})
	}
}
