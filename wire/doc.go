// Package wire is the contract between the master and the workers it
// re-executes: what a worker needs to serve (Settings, defined once, embedded
// in master.Config and sent as it is), what each start adds (Spec, carried in
// the PREFORK_WORKER_SPEC environment variable), the file descriptor numbers
// a worker inherits, and the control messages on the socket between them.
//
// Both sides import this package and nothing of each other: the master does
// not link the worker's loop to learn the protocol, and the worker does not
// link the supervisor.
package wire
