// Package metrics is the master's side of prefork's Prometheus series and
// the codec between master and workers: a worker gathers its private registry
// (built by package worker on its loop thread) and Encodes it into one control
// datagram; the master DecodeWorker's each answer, adding worker="slot" to
// every series, Merges them with its own registry (NewMaster) and serves them
// all on one endpoint. It does not link the worker's loop.
package metrics
