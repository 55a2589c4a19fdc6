package testenv

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a server and can hold all traffic, in
// both directions, without closing anything: a network partition, where
// the other side neither answers nor resets.
type Proxy struct {
	ln     net.Listener
	server string
	held   atomic.Bool
	stuck  atomic.Int32 // reads held back right now
	mu     sync.Mutex
	resume *sync.Cond
}

// NewProxy starts a proxy to server (host:port), closed when the test ends.
func NewProxy(t testing.TB, server string) *Proxy {
	t.Helper()
	p := &Proxy{server: server}
	p.resume = sync.NewCond(&p.mu)
	p.ln = Serve(t, p.serve)
	t.Cleanup(func() { p.Hold(false) }) // held readers go before the test ends
	return p
}

// Serve listens on a free port of 127.0.0.1 and calls serve with each
// connection, in a goroutine of its own, until the test ends.
func Serve(t testing.TB, serve func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Stuck reports how many reads are held back now: a client waiting on the
// server it cannot reach.
func (p *Proxy) Stuck() int { return int(p.stuck.Load()) }

// Hold stops (true) or resumes (false) all traffic.
func (p *Proxy) Hold(on bool) {
	p.mu.Lock()
	p.held.Store(on)
	p.mu.Unlock()
	if !on {
		p.resume.Broadcast()
	}
}

func (p *Proxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.server)
	if err != nil {
		_ = client.Close()
		return
	}
	go p.pipe(server, client)
	p.pipe(client, server)
}

// pipe copies from src to dst, waiting while the traffic is held.
func (p *Proxy) pipe(src, dst net.Conn) {
	defer func() { _ = src.Close(); _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		if p.held.Load() {
			p.stuck.Add(1)
			for p.held.Load() {
				p.resume.Wait()
			}
			p.stuck.Add(-1)
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
