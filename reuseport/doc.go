// Package reuseport opens SO_REUSEPORT listening sockets and steers new
// connections among the sockets of a reuseport group, so a pre-fork master
// can add and retire worker slots without dropping connections.
//
// # One socket per slot
//
// The master keeps one listening socket per worker slot and address, all
// bound to the same address with SO_REUSEPORT, and hands each worker its own.
// The kernel then picks a socket for each new connection (by a hash of the
// connection's addresses unless a program says otherwise), so every worker
// accepts from its own queue: no thundering herd on a shared socket, no lock,
// and a busy worker does not steal connections its queue would not hold. The
// sockets of one address form a reuseport group.
//
// # Closing a socket loses its queue
//
// A connection is assigned to one socket of the group when its SYN arrives,
// and waits in that socket's accept queue once the handshake completes. When
// a listening socket stops listening (close(2) of its last reference, or
// shutdown(2) with SHUT_RD) the kernel resets the connections still in its
// accept queue and drops its half-open ones (those a client completes later
// are reset too): they are not handed to the other members (nginx ticket
// #1300). Linux 5.14 and later can migrate them instead when the
// net.ipv4.tcp_migrate_req sysctl is 1, but it is 0 by default and this
// package does not rely on it (with it on, migrated connections go to a
// member chosen by the kernel's hash, which may be another retiring one).
//
// # Retiring a slot
//
// Scaling down therefore takes three steps:
//
//  1. Steer new connections away from the slot's socket: attach to the group
//     a program that never picks it (Group.Retire, or Steer).
//  2. Let the retiring worker accept what is queued on its socket. SYNs that
//     were assigned to it before step 1 may still complete their handshake
//     (about one round trip later, longer if a SYN-ACK is lost), so drain
//     until the queue has stayed empty for a grace period of a few round
//     trips, not just once.
//  3. Close the socket (Group.Close) and re-attach the program, since group
//     indexes moved.
//
// The worker should stop watching the socket and close its own copy before
// step 3: Group.Close takes the socket out of the group with shutdown(2), after
// which accept on any copy fails with EINVAL and poll reports it readable.
//
// # Group indexes
//
// A classic BPF program attached with SO_ATTACH_REUSEPORT_CBPF to any member
// applies to the whole group and replaces the program attached before. For
// each SYN it returns the index of the member to use; an index past the last
// member makes the kernel fall back to its hash. Indexes follow the kernel's
// array of members (net/core/sock_reuseport.c, tested on Linux 6.x by this
// package's tests):
//
//   - A TCP socket joins the group when it starts listening (listen(2)), at
//     index n, the number of members before it.
//   - A member leaves when it stops listening; the member at the last index
//     n-1 then moves to the leaving member's index (nothing moves if the
//     leaving member was the last), and the group has n-1 members.
//   - close(2) stops a listener only when it drops the last reference to the
//     socket in any process: while a worker still holds a copy the socket
//     stays in the group, listening. shutdown(fd, SHUT_RD) stops it at once.
//
// Any join or leave therefore changes which socket an index means, or leaves
// the new socket out of the program, so the program must be recomputed and
// re-attached after each. Group records the members in index order, applies
// the move rule on Close, and re-attaches the program itself; the master must
// make every join and leave through it.
//
// # Steering program
//
// The program Steer attaches loads the packet's flow hash (SKF_AD_RXHASH:
// the NIC's RSS hash, RPS's software hash, or on loopback the client socket's
// random per-connection hash), or a random number (SKF_AD_RANDOM) when the
// hash is 0 because nothing computed one, takes it modulo the number of live
// members, and maps that through a chain of compare-and-return instructions
// to the live member's group index. On loopback the flow hash spreads
// connections evenly; the tests check it.
//
// # Limits
//
//   - At most MaxGroup (256) members per group for Steer and Group.
//   - At least one member must be live; the group can't be steered to none.
//   - Linux only: SO_ATTACH_REUSEPORT_CBPF needs Linux 4.5, BPF_MOD 3.7 and
//     SO_DETACH_REUSEPORT_BPF (Unsteer) 5.3. All members must be opened by
//     the same effective user, as SO_REUSEPORT requires.
//   - The spread is over live members by hash, not by load: a worker that is
//     slower gets as many connections as the others.
//   - Group knows only the joins and leaves made through it, and is not safe
//     for concurrent use.
package reuseport
