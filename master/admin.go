package master

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"
)

// Status is the answer to the admin "status" command.
type Status struct {
	PID      int            `json:"pid"`
	Mode     Mode           `json:"mode"`
	Proto    string         `json:"proto"`
	Addrs    []string       `json:"addrs"`
	Metrics  string         `json:"metrics_addr,omitempty"` // as bound ("" disabled)
	Desired  int            `json:"workers_desired"`
	Reloads  int            `json:"reloads"`
	Uptime   float64        `json:"uptime_seconds"`
	Stopping bool           `json:"stopping"`
	Workers  []WorkerStatus `json:"workers"`
}

// WorkerStatus is one worker process in Status.
type WorkerStatus struct {
	Slot       int     `json:"slot"`
	PID        int     `json:"pid"`
	Generation int     `json:"generation"`
	State      string  `json:"state"`
	Uptime     float64 `json:"uptime_seconds"`
	Restarts   int     `json:"restarts"`
}

type adminReply struct {
	body []byte
	err  error
}

// startAdmin listens on the admin socket; each connection sends one command
// line and reads one JSON reply.
func (m *Master) startAdmin() error {
	path := m.cfg.AdminSocket
	// A socket file left by a master that died can be replaced; a live one
	// answers and must not be.
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s: another master is listening", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	_ = os.Chmod(path, 0o600)
	m.admin = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at stop
			}
			go m.serveAdmin(c)
		}
	}()
	return nil
}

func (m *Master) serveAdmin(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	reply := make(chan adminReply, 1)
	m.post(evAdmin{cmd: strings.TrimSpace(line), reply: reply})
	select {
	case r := <-reply:
		body := r.body
		if r.err != nil {
			body, _ = json.Marshal(struct {
				Error string `json:"error"`
			}{r.err.Error()})
		}
		_, _ = c.Write(append(body, '\n'))
	case <-time.After(5 * time.Second):
	}
}

func (m *Master) onAdmin(cmd string) adminReply {
	switch cmd {
	case "status":
		b, err := json.Marshal(m.status())
		return adminReply{body: b, err: err}
	}
	return adminReply{err: fmt.Errorf("unknown command %q", cmd)}
}

func (m *Master) status() Status {
	now := m.env.now()
	st := Status{
		PID: os.Getpid(), Mode: m.cfg.Mode, Proto: m.cfg.Proto, Addrs: m.ls.addrs, Metrics: m.MetricsAddr(),
		Desired: m.desired, Reloads: m.reloads, Uptime: now.Sub(m.started).Seconds(), Stopping: m.stopping,
	}
	for _, p := range m.procs {
		ws := WorkerStatus{Slot: p.slot, PID: p.pid, Generation: p.gen, State: p.state.String(),
			Uptime: now.Sub(p.started).Seconds()}
		if s := m.slots[p.slot]; s != nil {
			ws.Restarts = s.restarts
		}
		if p.retired != nil {
			ws.State = "retiring"
		}
		st.Workers = append(st.Workers, ws)
	}
	sort.Slice(st.Workers, func(i, j int) bool {
		a, b := st.Workers[i], st.Workers[j]
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		return a.Generation < b.Generation
	})
	return st
}

// QueryStatus asks the master listening on the admin socket for its Status.
func QueryStatus(path string) (Status, error) {
	var st Status
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return st, fmt.Errorf("admin socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("status\n")); err != nil {
		return st, fmt.Errorf("admin socket: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return st, fmt.Errorf("admin socket: %w", err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(line, &e) == nil && e.Error != "" {
		return st, errors.New(e.Error)
	}
	if err := json.Unmarshal(line, &st); err != nil {
		return st, fmt.Errorf("admin socket: bad reply: %w", err)
	}
	return st, nil
}
