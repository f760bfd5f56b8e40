package master

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/wire"
)

// httpServer serves /metrics, /healthz and /readyz for operators. It runs on
// Go's net/http: this is the master's admin endpoint, not the data path.
type httpServer struct {
	addr string
	ln   net.Listener
	srv  *http.Server
}

// newHTTPServer listens on addr. With fallback (the default address, not one
// the user chose), an address in use (a second prefork on this machine) is
// replaced by a free port on 127.0.0.1, with a warning that says where.
func (m *Master) newHTTPServer(addr string, fallback bool) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil && fallback && errors.Is(err, unix.EADDRINUSE) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			m.log.Warn("metrics address in use (another prefork?): serving metrics on a free port instead; choose one with --metrics-listen",
				"wanted", addr, "addr", ln.Addr().String())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w (choose another address, or disable metrics with --metrics-listen '')", err)
	}
	return m.httpServerOn(ln), nil
}

// httpServerOn serves the operators' endpoints on ln.
func (m *Master) httpServerOn(ln net.Listener) *httpServer {
	mux := http.NewServeMux()
	gatherers := prometheus.Gatherers{m.metrics.Registry, prometheus.GathererFunc(m.gatherWorkers)}
	mux.Handle("/metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slogAdapter{m},
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		plan, ok := m.askScrapePlan(r.Context())
		if !ok {
			http.Error(w, "master busy", http.StatusServiceUnavailable)
			return
		}
		if plan.ready < plan.desired || plan.stopping {
			http.Error(w, fmt.Sprintf("not ready: %d/%d workers ready", plan.ready, plan.desired), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ready: %d/%d workers\n", plan.ready, plan.desired)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "prefork master: /metrics /healthz /readyz")
	})
	return &httpServer{
		addr: ln.Addr().String(),
		ln:   ln,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
	}
}

// serve serves until close. If the listener fails, metrics stop and the
// error is logged: the workers keep serving.
func (h *httpServer) serve(log *slog.Logger) {
	if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics listener failed: /metrics, /healthz and /readyz are down", "addr", h.addr, "err", err)
	}
}

func (h *httpServer) close() { _ = h.srv.Close() }

type slogAdapter struct{ m *Master }

func (a slogAdapter) Println(v ...any) { a.m.log.Warn("metrics", "err", fmt.Sprint(v...)) }

// scrapePlan is what a scrape needs from the supervisor: the serving worker
// of each slot and its control socket.
type scrapePlan struct {
	targets  []scrapeTarget
	desired  int
	ready    int
	stopping bool
}

type scrapeTarget struct {
	slot    int
	ctl     control
	replies <-chan metricsReply
}

// scrapePlan runs on the supervisor goroutine.
func (m *Master) scrapePlan() scrapePlan {
	plan := scrapePlan{desired: m.desired, stopping: m.stopping}
	for k, s := range m.slots {
		p := s.cur
		if p == nil || p.state != stateReady {
			plan.targets = append(plan.targets, scrapeTarget{slot: k}) // missing
			continue
		}
		plan.ready++
		plan.targets = append(plan.targets, scrapeTarget{slot: k, ctl: p.ctl, replies: p.metrics})
	}
	return plan
}

func (m *Master) askScrapePlan(ctx context.Context) (scrapePlan, bool) {
	reply := make(chan scrapePlan, 1)
	select {
	case m.events <- evScrape{reply: reply}:
	case <-ctx.Done():
		return scrapePlan{}, false
	}
	select {
	case p := <-reply:
		return p, true
	case <-ctx.Done():
		return scrapePlan{}, false
	case <-time.After(5 * time.Second):
		return scrapePlan{}, false
	}
}

var scrapeID atomic.Uint64

// gatherWorkers asks every serving worker for its registry over its control
// socket, each bounded by ScrapeTimeout, and labels the answers with the
// slot. A worker that does not answer in time is left out and reported by
// prefork_worker_scrape_success{worker="k"} 0.
func (m *Master) gatherWorkers() ([]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	plan, ok := m.askScrapePlan(ctx)
	if !ok {
		return nil, errors.New("master did not answer")
	}
	var (
		mu   sync.Mutex
		sets [][]*dto.MetricFamily
		okBy = map[int]bool{}
		errs []error
		wg   sync.WaitGroup
	)
	for _, t := range plan.targets {
		okBy[t.slot] = false
		if t.ctl == nil {
			continue
		}
		wg.Add(1)
		go func(t scrapeTarget) {
			defer wg.Done()
			mfs, err := m.gatherOne(t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			okBy[t.slot] = true
			sets = append(sets, mfs)
		}(t)
	}
	wg.Wait()
	missing := 0
	for _, ok := range okBy {
		if !ok {
			missing++
		}
	}
	if missing > 0 {
		m.log.Warn("scrape: workers missing", "missing", missing, "errs", errors.Join(errs...))
	}
	out := metrics.Merge(sets...)
	return append(out, metrics.ScrapeSuccess(okBy)), nil
}

func (m *Master) gatherOne(t scrapeTarget) ([]*dto.MetricFamily, error) {
	id := strconv.FormatUint(scrapeID.Add(1), 10)
	// A wedged worker's full socket buffer must not block the scrape.
	if err := t.ctl.Send(wire.MetricsRequest(id), m.cfg.ScrapeTimeout); err != nil {
		return nil, fmt.Errorf("slot %d: %w", t.slot, err)
	}
	timeout := time.NewTimer(m.cfg.ScrapeTimeout)
	defer timeout.Stop()
	for {
		select {
		case r := <-t.replies:
			if r.id != id {
				continue // a late answer to an earlier, timed-out scrape
			}
			return metrics.DecodeWorker(t.slot, r.body)
		case <-timeout.C:
			return nil, fmt.Errorf("slot %d: no answer within %v", t.slot, m.cfg.ScrapeTimeout)
		}
	}
}
