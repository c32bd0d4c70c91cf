package inspect

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"porthole/internal/metrics"
)

// The agent's Prometheus metrics, under the names the relay uses for the
// same things, labelled by the tunnel's name in the API. Summed with the
// relay's, which counts only the requests it answers itself, they give the
// whole.
var (
	connsDesc = prometheus.NewDesc(metrics.PublicConnectionsTotal, "Public connections carried to a tunnel's upstream.",
		[]string{metrics.LabelTunnel, metrics.LabelProtocol}, nil)
	openDesc = prometheus.NewDesc(metrics.PublicConnectionsOpen, "Public connections being carried.",
		[]string{metrics.LabelTunnel, metrics.LabelProtocol}, nil)
	receivedDesc = prometheus.NewDesc(metrics.ReceivedBytesTotal, "Bytes received from public clients.",
		[]string{metrics.LabelTunnel}, nil)
	sentDesc = prometheus.NewDesc(metrics.SentBytesTotal, "Bytes sent to public clients.",
		[]string{metrics.LabelTunnel}, nil)
	requestsDesc = prometheus.NewDesc(metrics.HTTPRequestsTotal, "HTTP requests the agent proxied, by response status.",
		[]string{metrics.LabelTunnel, metrics.LabelStatus}, nil)
)

// collector reads every tunnel's counters at scrape time.
type collector struct{ agent Agent }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connsDesc, openDesc, receivedDesc, sentDesc, requestsDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.agent.Tunnels() {
		if t.Tap == nil || len(t.PublicURLs) == 0 {
			continue
		}
		proto, _, _ := strings.Cut(t.PublicURLs[0], "://")
		if proto == "https" {
			proto = "http"
		}
		m := t.Tap.Metrics().Snapshot()
		ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.CounterValue, float64(m.Conns.Count), t.Name, proto)
		ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(m.Conns.Gauge), t.Name, proto)
		ch <- prometheus.MustNewConstMetric(receivedDesc, prometheus.CounterValue, float64(m.Conns.BytesIn), t.Name)
		ch <- prometheus.MustNewConstMetric(sentDesc, prometheus.CounterValue, float64(m.Conns.BytesOut), t.Name)
		for status, n := range t.Tap.Metrics().Statuses() {
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), t.Name, strconv.Itoa(status))
		}
	}
}

// metricsHandler serves the agent's metrics in Prometheus' text format.
func metricsHandler(agent Agent) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{agent})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
