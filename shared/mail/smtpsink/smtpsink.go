// Package smtpsink is a tiny SMTP server for local stacks and tests: it accepts every message
// (HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no authentication), writes each to a
// folder as an .eml file and keeps it in memory for tests (Messages). It proves the SMTP adapter
// (shared/mail) end to end; it is not a mail server. It listens on loopback addresses only.
package smtpsink

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// MaxMessageBytes bounds one message's DATA (32 MiB).
const MaxMessageBytes = 32 << 20

// Message is one accepted message: the envelope and the raw RFC 5322 data (CRLF line ends,
// dot-unstuffed).
type Message struct {
	From string
	To   []string
	Data []byte
	// TLS reports whether the session had switched to TLS (STARTTLS) when the message came; User
	// is the name it authenticated with (AUTH PLAIN), "" for none.
	TLS  bool
	User string
	// File is the .eml file it was written to ("" without a folder).
	File string
}

// Options configure a sink beyond Start's: TLS, when set, offers STARTTLS with it (tests of the
// adapter's TLS path); AUTH PLAIN is always accepted, with any password.
type Options struct {
	Addr, Dir string
	Logger    *slog.Logger
	TLS       *tls.Config
}

// Sink is a running SMTP sink.
type Sink struct {
	ln  net.Listener
	dir string
	log *slog.Logger
	tls *tls.Config

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	msgs  []Message
	wake  chan struct{}
	seq   int
	wg    sync.WaitGroup
}

// Start listens on addr (a loopback host:port; port 0 picks one) and serves until Close. dir, when
// not empty, receives every message as <seq>-<unix nanos>.eml.
func Start(addr, dir string, logger *slog.Logger) (*Sink, error) {
	return StartWith(Options{Addr: addr, Dir: dir, Logger: logger})
}

// StartWith is Start with Options.
func StartWith(o Options) (*Sink, error) {
	addr, dir, logger := o.Addr, o.Dir, o.Logger
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("smtpsink: %q is not host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("smtpsink: %q is not a loopback address (the sink is for local runs)", addr)
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("smtpsink: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtpsink: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{ln: ln, dir: dir, log: logger, tls: o.TLS, conns: map[net.Conn]struct{}{}, wake: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is the address the sink listens on.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Close stops listening, ends the open sessions and waits for them.
func (s *Sink) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Messages returns the messages accepted so far, in order.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns once at least n messages were accepted, or ctx's error.
func (s *Sink) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs, wake := append([]Message(nil), s.msgs...), s.wake
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ctx.Done():
			return msgs, ctx.Err()
		case <-wake:
		}
	}
}

func (s *Sink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				_ = c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.session(c)
		}()
	}
}

func (s *Sink) session(c net.Conn) {
	r := bufio.NewReader(io.LimitReader(c, MaxMessageBytes+1<<20))
	w := bufio.NewWriter(c)
	reply := func(code int, text string) bool {
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(w, "%d %s\r\n", code, text)
		return w.Flush() == nil
	}
	if !reply(220, "spine smtp sink ready") {
		return
	}
	var from, user string
	var to []string
	mailSeen, secure := false, false
	for {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "HELO":
			reply(250, "spine")
		case "EHLO":
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(w, "250-spine\r\n250-8BITMIME\r\n")
			if s.tls != nil && !secure {
				fmt.Fprintf(w, "250-STARTTLS\r\n")
			}
			fmt.Fprintf(w, "250-AUTH PLAIN\r\n250 SIZE %d\r\n", MaxMessageBytes)
			if w.Flush() != nil {
				return
			}
		case "STARTTLS":
			if s.tls == nil || secure {
				reply(502, "command not implemented")
				continue
			}
			if !reply(220, "go ahead") {
				return
			}
			tc := tls.Server(c, s.tls)
			_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
			if err := tc.Handshake(); err != nil {
				return
			}
			_ = tc.SetDeadline(time.Time{})
			c, secure = tc, true
			r, w = bufio.NewReader(io.LimitReader(tc, MaxMessageBytes+1<<20)), bufio.NewWriter(tc)
			from, to, mailSeen = "", nil, false
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") {
				reply(504, "unrecognized authentication type")
				continue
			}
			if resp == "" {
				if !reply(334, "") {
					return
				}
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				resp = strings.TrimSpace(line)
			}
			raw, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(raw), "\x00")
			if err != nil || len(parts) != 3 || parts[1] == "" {
				reply(501, "malformed AUTH PLAIN")
				continue
			}
			user = parts[1]
			reply(235, "authenticated")
		case "MAIL":
			from, to, mailSeen = address(arg), nil, true
			reply(250, "ok")
		case "RCPT":
			if !mailSeen {
				reply(503, "need MAIL first")
				continue
			}
			to = append(to, address(arg))
			reply(250, "ok")
		case "DATA":
			if len(to) == 0 {
				reply(503, "need RCPT first")
				continue
			}
			if !reply(354, "end with <CRLF>.<CRLF>") {
				return
			}
			data, err := readData(r)
			if err != nil {
				if errors.Is(err, errTooLarge) {
					reply(552, "message too large")
				}
				return
			}
			if err := s.store(Message{From: from, To: to, Data: data, TLS: secure, User: user}); err != nil {
				s.log.Error("smtp sink: cannot store a message", "error", err)
				reply(451, "cannot store the message")
			} else {
				reply(250, "ok: queued")
			}
			from, to, mailSeen = "", nil, false
		case "RSET":
			from, to, mailSeen = "", nil, false
			reply(250, "ok")
		case "NOOP":
			reply(250, "ok")
		case "QUIT":
			reply(221, "bye")
			return
		default:
			reply(502, "command not implemented")
		}
	}
}

var errTooLarge = errors.New("smtpsink: message too large")

// readData reads DATA lines up to the lone ".", undoing dot-stuffing; lines end in CRLF.
func readData(r *bufio.Reader) ([]byte, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "." {
			return []byte(b.String()), nil
		}
		trimmed = strings.TrimPrefix(trimmed, ".")
		b.WriteString(trimmed)
		b.WriteString("\r\n")
		if b.Len() > MaxMessageBytes {
			return nil, errTooLarge
		}
	}
}

// address takes the mailbox out of "FROM:<a@b> SIZE=1" or "TO:<a@b>".
func address(arg string) string {
	if i := strings.IndexByte(arg, '<'); i >= 0 {
		if j := strings.IndexByte(arg[i:], '>'); j > 0 {
			return arg[i+1 : i+j]
		}
	}
	_, v, _ := strings.Cut(arg, ":")
	return strings.TrimSpace(v)
}

func (s *Sink) store(m Message) error {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	if s.dir != "" {
		m.File = filepath.Join(s.dir, fmt.Sprintf("%06d-%d.eml", seq, time.Now().UnixNano()))
		if err := os.WriteFile(m.File, m.Data, 0o600); err != nil {
			return err
		}
	}
	s.log.Info("smtp sink: message accepted", "from", m.From, "recipients", len(m.To), "bytes", len(m.Data), "file", m.File)
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// Run serves a sink on addr, writing messages to dir, until ctx ends (`handler smtp-sink`).
func Run(ctx context.Context, addr, dir string, logger *slog.Logger) error {
	s, err := Start(addr, dir, logger)
	if err != nil {
		return err
	}
	if logger != nil {
		logger.Info("smtp sink listening", "addr", s.Addr(), "dir", dir)
	}
	<-ctx.Done()
	return s.Close()
}
