package master

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Scaling by number: the admin command "scale N [TIMEOUT]" (prefork scale N).
//
// TTIN and TTOU add or retire one slot, but signals of one kind sent twice
// before the master handles the first merge into one (POSIX keeps one
// pending instance of a standard signal; Go's runtime does the same), so two
// quick TTOUs may retire one slot. "scale N" asks for an absolute count
// instead: it is idempotent, and it is answered when the count is reached —
// N slots with a ready worker and no retiring worker left — or, failing
// that, when TIMEOUT (the client's) has passed, with what was reached.

// DefaultScaleTimeout is how long "scale N" waits without a TIMEOUT, and
// maxScaleWait the most it waits whatever the client asks.
const (
	DefaultScaleTimeout = 60 * time.Second
	maxScaleWait        = time.Hour
)

// evScale is an admin "scale N": reply once N workers serve, or at deadline.
type evScale struct {
	n        int
	deadline time.Time
	reply    chan<- adminReply
}

// scaleWait is a "scale N" waiting for its count.
type scaleWait struct {
	n        int
	deadline time.Time
	reply    chan<- adminReply
}

// parseScale reads "scale N [TIMEOUT]"; isScale is false for other commands.
func parseScale(cmd string) (n int, timeout time.Duration, isScale bool, err error) {
	f := strings.Fields(cmd)
	if len(f) == 0 || f[0] != "scale" {
		return 0, 0, false, nil
	}
	if len(f) < 2 || len(f) > 3 {
		return 0, 0, true, errors.New(`scale: want "scale N [TIMEOUT]"`)
	}
	n, err = strconv.Atoi(f[1])
	if err != nil || n < 1 {
		return 0, 0, true, fmt.Errorf("scale: N %q: want a whole number of workers, at least 1", f[1])
	}
	timeout = DefaultScaleTimeout
	if len(f) == 3 {
		if timeout, err = time.ParseDuration(f[2]); err != nil || timeout <= 0 {
			return 0, 0, true, fmt.Errorf("scale: TIMEOUT %q: want a positive duration", f[2])
		}
	}
	return n, min(timeout, maxScaleWait), true, nil
}

// serveScale answers a "scale" command on admin connection c, and reports
// whether cmd was one. Unlike other commands, whose answer is immediate, it
// waits for the count to be reached, up to the client's timeout: the
// connection's deadline is moved past it.
func (m *Master) serveScale(c net.Conn, cmd string) bool {
	n, timeout, ok, err := parseScale(cmd)
	if !ok {
		return false
	}
	if err != nil {
		writeAdminError(c, err)
		return true
	}
	// The master answers by the deadline (checkScale, every tick); the
	// second after it is for that answer to arrive.
	deadline := time.Now().Add(timeout)
	_ = c.SetDeadline(deadline.Add(2 * time.Second))
	reply := make(chan adminReply, 1)
	m.post(evScale{n: n, deadline: deadline, reply: reply})
	select {
	case r := <-reply:
		if r.err != nil {
			writeAdminError(c, r.err)
			return true
		}
		_, _ = c.Write(append(r.body, '\n'))
	case <-time.After(timeout + time.Second):
	}
	return true
}

// onScale sets the desired count (scale) and waits for it (checkScale, after
// every event, answers at once when it is reached already).
func (m *Master) onScale(ev evScale) {
	if m.stopping {
		ev.reply <- adminReply{err: errors.New("scale: the master is stopping")}
		return
	}
	m.scale(ev.n)
	m.scaleWaits = append(m.scaleWaits, scaleWait(ev))
}

// scaleReached: every desired slot has a ready worker and no retired slot's
// worker is still draining.
func (m *Master) scaleReached() bool {
	return m.readySlots() == m.desired && m.retiring() == 0
}

// retiring counts the workers of retired slots still running.
func (m *Master) retiring() int {
	n := 0
	for _, p := range m.procs {
		if p.retired != nil {
			n++
		}
	}
	return n
}

// checkScale answers the "scale N" commands whose count is reached, that
// another change of the count (a later scale, TTIN, TTOU) has superseded,
// or whose deadline has passed. It runs after every event (the 100 ms tick
// included).
func (m *Master) checkScale() {
	if len(m.scaleWaits) == 0 {
		return
	}
	now := m.env.now()
	kept := m.scaleWaits[:0]
	for _, w := range m.scaleWaits {
		switch {
		case m.stopping:
			w.reply <- adminReply{err: fmt.Errorf("scale %d: the master is stopping", w.n)}
		case m.desired != w.n:
			w.reply <- adminReply{err: fmt.Errorf("scale %d: superseded: %d workers desired now", w.n, m.desired)}
		case m.scaleReached():
			b, err := json.Marshal(m.status())
			w.reply <- adminReply{body: b, err: err}
		case now.After(w.deadline):
			w.reply <- adminReply{err: fmt.Errorf("scale %d: not reached in time: %d of %d workers ready, %d retiring still draining",
				w.n, m.readySlots(), m.desired, m.retiring())}
		default:
			kept = append(kept, w)
			continue
		}
		m.log.Info("scale answered", "workers", w.n, "ready", m.readySlots(), "desired", m.desired)
	}
	m.scaleWaits = kept
}

// Scale asks the master listening on the admin socket for n workers, and
// waits up to timeout for them to serve; it returns the master's Status
// then.
func Scale(path string, n int, timeout time.Duration) (Status, error) {
	var st Status
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return st, fmt.Errorf("admin socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout + 5*time.Second))
	if _, err := fmt.Fprintf(c, "scale %d %s\n", n, timeout); err != nil {
		return st, fmt.Errorf("admin socket: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return st, fmt.Errorf("admin socket: no answer: %w", err)
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
