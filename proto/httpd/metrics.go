package httpd

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The Server's series, in the worker's registry (it is a
// prometheus.Collector, gathered on the loop's goroutine, so its counters
// are plain integers).
var (
	descHTTPRequests = prometheus.NewDesc("prefork_http_requests_total",
		"HTTP responses written, by status class.", []string{"code"}, nil)
	descHTTPDuration = prometheus.NewDesc("prefork_http_request_duration_seconds",
		"Time from the handler deferring a response (deferred and net/http requests) to the response being done.", nil, nil)
	descHTTPInflight = prometheus.NewDesc("prefork_http_inflight_requests",
		"Deferred and net/http requests not done yet.", nil, nil)
)

var (
	classLabels     = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
	durationBuckets = prometheus.DefBuckets
)

// httpStats are the Server's counters.
type httpStats struct {
	byClass  [len(classLabels)]uint64
	buckets  [16]uint64 // counts per durationBuckets (non-cumulative); the last is +Inf
	durCount uint64
	durSum   float64
}

func (st *httpStats) count(status int) {
	if k := status/100 - 1; k >= 0 && k < len(st.byClass) {
		st.byClass[k]++
	}
}

func (st *httpStats) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(durationBuckets) && s > durationBuckets[i] {
		i++
	}
	st.buckets[i]++
	st.durCount++
	st.durSum += s
}

// Describe implements prometheus.Collector.
func (srv *Server) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHTTPRequests
	ch <- descHTTPDuration
	ch <- descHTTPInflight
}

// Collect implements prometheus.Collector. Call it on the loop's goroutine.
func (srv *Server) Collect(ch chan<- prometheus.Metric) {
	st := &srv.stats
	for k, label := range classLabels {
		ch <- prometheus.MustNewConstMetric(descHTTPRequests, prometheus.CounterValue, float64(st.byClass[k]), label)
	}
	cum := map[float64]uint64{}
	var n uint64
	for i, ub := range durationBuckets {
		n += st.buckets[i]
		cum[ub] = n
	}
	ch <- prometheus.MustNewConstHistogram(descHTTPDuration, st.durCount, st.durSum, cum)
	ch <- prometheus.MustNewConstMetric(descHTTPInflight, prometheus.GaugeValue, float64(srv.deferredNow))
}
