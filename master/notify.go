package master

import (
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier speaks sd_notify(3) to systemd through go-systemd, which is a
// no-op when NOTIFY_SOCKET is unset (not under systemd). NOTIFY_SOCKET stays
// in the master's environment for its later notifications; workers never see
// it (workerEnv removes it).
type notifier struct {
	m *Master
	// watchdog is half of WATCHDOG_USEC: how often to send WATCHDOG=1 (0: off).
	watchdog     time.Duration
	lastWatchdog time.Time
	lastStatus   string
	readySent    bool
}

func newNotifier(m *Master) *notifier {
	n := &notifier{m: m}
	if d, err := daemon.SdWatchdogEnabled(false); err == nil && d > 0 {
		n.watchdog = d / 2
	}
	return n
}

func (n *notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.m.log.Warn("sd_notify", "state", state, "err", err)
	}
}

// ready sends READY=1 (with the status line).
func (n *notifier) ready() {
	n.readySent = true
	n.send(daemon.SdNotifyReady + "\n" + "STATUS=" + n.m.statusLine())
}

// reloading sends RELOADING=1 with the CLOCK_MONOTONIC time, as systemd
// wants it for Type=notify-reload (and accepts it for Type=notify).
func (n *notifier) reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

func (n *notifier) stopping() { n.send(daemon.SdNotifyStopping) }

// tick sends STATUS= when it changed and WATCHDOG=1 when due, but only while
// no worker is silent: if the master's workers stop heartbeating, systemd's
// watchdog should see it.
func (n *notifier) tick(now time.Time, healthy bool) {
	if s := n.m.statusLine(); s != n.lastStatus {
		n.lastStatus = s
		n.send("STATUS=" + s)
	}
	if n.watchdog > 0 && healthy && now.Sub(n.lastWatchdog) >= n.watchdog {
		n.lastWatchdog = now
		n.send(daemon.SdNotifyWatchdog)
	}
}

// statusLine is the STATUS= text: workers and connections.
func (m *Master) statusLine() string {
	ready, conns := 0, 0
	for _, s := range m.slots {
		if s.cur != nil && s.cur.state == stateReady {
			ready++
		}
	}
	for _, p := range m.procs {
		conns += p.conns
	}
	state := "serving"
	switch {
	case m.stopping:
		state = "stopping"
	case m.upgrading && m.upgrade != nil:
		state = "upgrading from " + m.upgrade.From
	case len(m.reloadQueue) > 0 || m.reloadBusy():
		state = "reloading"
	}
	return fmt.Sprintf("%s: %d/%d workers ready, %d connections; prefork %s", state, ready, m.desired, conns, m.version)
}
