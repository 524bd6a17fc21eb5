package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	auditQueueLen    = 8192
	auditBatchBytes  = 64 << 10
	auditErrInterval = time.Minute
	auditTimeFormat  = "2006-01-02T15:04:05.000Z07:00"
)

var errAuditClosed = errors.New("audit log closed")

// AuditLog writes JSON lines about blocked (and, if configured, all)
// queries. Record never blocks: entries go into a bounded queue drained by
// a writer goroutine; when the queue is full or a write fails, entries are
// dropped and counted (dnsward_audit_dropped_total). A nil *AuditLog is
// valid and does nothing.
type AuditLog struct {
	all       bool
	anonymize bool
	log       *slog.Logger
	sink      auditSink
	in        chan auditEntry
	reopen    chan chan error
	dropped   atomic.Uint64

	closeOnce sync.Once
	quit      chan struct{}
	done      chan struct{}

	// Owned by the writer goroutine.
	batch      bytes.Buffer
	batchLines uint64
	enc        *json.Encoder
	lastErrLog time.Time
}

// auditEntry is the part of a QueryEvent the log needs, copied by value so
// the resolver can reuse its event.
type auditEntry struct {
	time                            time.Time
	client                          netip.Addr
	group, qname, list, rule, answr string
	transport, token                string
	rcode                           int
	qtype                           uint16
	outcome                         Outcome
	monitor                         bool
}

type auditLine struct {
	Time    string `json:"time"`
	Client  string `json:"client"`
	Group   string `json:"group"`
	QName   string `json:"qname"`
	QType   string `json:"qtype"`
	Rcode   string `json:"rcode"`
	Outcome string `json:"outcome"`
	List    string `json:"list"`
	Rule    string `json:"rule"`
	Answer  string `json:"answer"`
	Monitor bool   `json:"monitor"`
	// Transport and Token (a token id) are left out when unknown or unused.
	Transport string `json:"transport,omitempty"`
	Token     string `json:"token,omitempty"`
}

// NewAuditLog opens the audit log cfg describes and starts its writer.
// It returns nil, nil when cfg.Path is "" (audit off), and an error naming
// the path when the file cannot be opened for appending.
func NewAuditLog(cfg AuditConfig, logger *slog.Logger) (*AuditLog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		return nil, nil
	}
	if cfg.toStdout() {
		return newAuditLog(cfg, logger, streamSink{os.Stdout}), nil
	}
	size, files := cfg.MaxSizeMB, cfg.MaxFiles
	if size == 0 {
		size = defaultAuditMaxSizeMB
	}
	if files == 0 {
		files = defaultAuditMaxFiles
	}
	f, err := openRotatingFile(cfg.Path, int64(size)<<20, files)
	if err != nil {
		return nil, fmt.Errorf("log.audit.path %q: cannot open for writing: %w", cfg.Path, err)
	}
	return newAuditLog(cfg, logger, f), nil
}

func newAuditLog(cfg AuditConfig, logger *slog.Logger, sink auditSink) *AuditLog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &AuditLog{
		all: cfg.All, anonymize: cfg.Anonymize, log: logger, sink: sink,
		in: make(chan auditEntry, auditQueueLen), reopen: make(chan chan error),
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	a.enc = json.NewEncoder(&a.batch)
	a.enc.SetEscapeHTML(false)
	go a.run()
	return a
}

// Record queues one event for the log without blocking; the caller
// decides which events are audited.
func (a *AuditLog) Record(ev *QueryEvent) {
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	e := auditEntry{time: at, client: ev.Client, group: ev.Group, qname: ev.QName, list: ev.List,
		rule: ev.Rule, answr: ev.Answer, rcode: ev.Rcode, qtype: ev.QType, outcome: ev.Outcome, monitor: ev.Monitored,
		transport: ev.Proto, token: ev.TokenID}
	select {
	case a.in <- e:
	default:
		a.dropped.Add(1)
	}
}

// Dropped returns the number of entries lost to a full queue or failed writes.
func (a *AuditLog) Dropped() uint64 {
	if a == nil {
		return 0
	}
	return a.dropped.Load()
}

// Reopen closes and reopens the file (after external rotation, on SIGHUP).
func (a *AuditLog) Reopen() error {
	if a == nil {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case a.reopen <- reply:
		return <-reply
	case <-a.done:
		return errAuditClosed
	}
}

// Close writes what is queued, closes the file and stops the writer.
func (a *AuditLog) Close() error {
	if a == nil {
		return nil
	}
	a.closeOnce.Do(func() { close(a.quit) })
	<-a.done
	return nil
}

func (a *AuditLog) run() {
	defer close(a.done)
	for {
		select {
		case e := <-a.in:
			a.encode(e)
			a.drain()
		case reply := <-a.reopen:
			err := a.sink.Reopen()
			if err != nil {
				a.log.Error("audit log reopen failed", "err", err)
			}
			reply <- err
		case <-a.quit:
			a.drain()
			if err := a.sink.Close(); err != nil {
				a.log.Error("audit log close failed", "err", err)
			}
			return
		}
	}
}

// drain encodes whatever is queued, writing in batches of about
// auditBatchBytes, and writes the rest once the queue is empty.
func (a *AuditLog) drain() {
	for {
		if a.batch.Len() >= auditBatchBytes {
			a.flush()
		}
		select {
		case e := <-a.in:
			a.encode(e)
		default:
			a.flush()
			return
		}
	}
}

func (a *AuditLog) encode(e auditEntry) {
	client := e.client
	if a.anonymize {
		client = anonymizeAddr(client)
	}
	line := auditLine{
		Time: e.time.UTC().Format(auditTimeFormat), Group: e.group, QName: e.qname, QType: qtypeString(e.qtype),
		Rcode: rcodeString(e.rcode), Outcome: e.outcome.String(), List: e.list, Rule: e.rule, Answer: e.answr,
		Monitor: e.monitor, Transport: e.transport, Token: e.token,
	}
	if client.IsValid() {
		line.Client = client.String()
	}
	if err := a.enc.Encode(line); err != nil { // cannot happen for strings and bools
		a.dropped.Add(1)
		return
	}
	a.batchLines++
}

func (a *AuditLog) flush() {
	if a.batch.Len() == 0 {
		return
	}
	if _, err := a.sink.Write(a.batch.Bytes()); err != nil {
		a.dropped.Add(a.batchLines)
		if now := time.Now(); now.Sub(a.lastErrLog) >= auditErrInterval {
			a.lastErrLog = now
			a.log.Error("audit log write failed; entries dropped (DNS unaffected)", "err", err,
				"dropped_total", a.dropped.Load())
		}
	}
	a.batch.Reset()
	a.batchLines = 0
}

// anonymizeAddr keeps the network part: /24 for IPv4, /48 for IPv6.
func anonymizeAddr(a netip.Addr) netip.Addr {
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a
	}
	return p.Addr()
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return strconv.Itoa(rcode)
}
