/*
 * floor: the least a pre-fork epoll server can do, in C, as a yardstick for
 * scripts/bench. It is not a server anyone should run: the HTTP mode does not
 * parse requests, it only counts request ends ("\r\n\r\n") and answers each
 * with a canned 200; the echo mode writes back what it reads.
 *
 *   floor http|echo HOST:PORT WORKERS
 *
 * Each of WORKERS forked processes has its own SO_REUSEPORT listener and one
 * epoll set: the listener level-triggered, connections edge-triggered with
 * EPOLLRDHUP, registered once. A readable connection is read until a short
 * read (the read that would return EAGAIN is skipped, as prefork does), and
 * the answers to everything read go out in one write; only a tail the kernel
 * refuses is kept, for EPOLLOUT. Workers die with the parent (PR_SET_PDEATHSIG)
 * and the parent stops them on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXFD 65536
#define RBUF (64 * 1024)

struct conn {
	int match;   /* bytes of "\r\n\r\n" matched so far */
	char *out;   /* unsent tail, or NULL */
	size_t outlen, outoff;
};

static struct conn *conns[MAXFD];
static char rbuf[RBUF];
static char *wbuf;
static size_t wcap;
static int echo_mode;
static char resp[256];
static size_t resplen;
static time_t resp_sec;

static void die(const char *what) { perror(what); exit(1); }

static void make_response(void) {
	time_t now = time(NULL);
	if (now == resp_sec) return;
	resp_sec = now;
	char date[64];
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	resplen = (size_t)snprintf(resp, sizeof resp,
		"HTTP/1.1 200 OK\r\nServer: floor\r\nDate: %s\r\nContent-Type: text/plain\r\n"
		"Content-Length: 13\r\n\r\nHello, World!", date);
}

static void reserve(size_t n) {
	if (n <= wcap) return;
	while (wcap < n) wcap = wcap ? 2 * wcap : 64 * 1024;
	if (!(wbuf = realloc(wbuf, wcap))) die("realloc");
}

static void close_conn(int fd) {
	struct conn *c = conns[fd];
	if (c) { free(c->out); free(c); conns[fd] = NULL; }
	close(fd);
}

/* send writes p through; the part the kernel refuses waits for EPOLLOUT. */
static int send_out(int fd, struct conn *c, const char *p, size_t n) {
	if (c->out) { /* keep the order */
		if (!(c->out = realloc(c->out, c->outlen + n))) die("realloc");
		memcpy(c->out + c->outlen, p, n);
		c->outlen += n;
		return 0;
	}
	ssize_t w = write(fd, p, n);
	if (w < 0) {
		if (errno != EAGAIN) return -1;
		w = 0;
	}
	if ((size_t)w < n) {
		if (!(c->out = malloc(n - (size_t)w))) die("malloc");
		memcpy(c->out, p + w, n - (size_t)w);
		c->outlen = n - (size_t)w;
		c->outoff = 0;
	}
	return 0;
}

static int flush_out(int fd, struct conn *c) {
	while (c->out && c->outoff < c->outlen) {
		ssize_t w = write(fd, c->out + c->outoff, c->outlen - c->outoff);
		if (w < 0) return errno == EAGAIN ? 0 : -1;
		c->outoff += (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	return 0;
}

static void on_readable(int fd, struct conn *c, int rdhup) {
	for (;;) {
		ssize_t n = read(fd, rbuf, RBUF);
		if (n < 0) {
			if (errno == EAGAIN) return;
			if (errno == EINTR) continue;
			close_conn(fd);
			return;
		}
		if (n == 0) { close_conn(fd); return; }
		int r;
		if (echo_mode) {
			r = send_out(fd, c, rbuf, (size_t)n);
		} else {
			static const char end[] = "\r\n\r\n";
			size_t reqs = 0;
			int m = c->match;
			for (ssize_t i = 0; i < n; i++) {
				char b = rbuf[i];
				if (b == end[m]) { if (++m == 4) { reqs++; m = 0; } }
				else m = (b == '\r');
			}
			c->match = m;
			r = 0;
			if (reqs) {
				make_response();
				reserve(reqs * resplen);
				for (size_t k = 0; k < reqs; k++) memcpy(wbuf + k * resplen, resp, resplen);
				r = send_out(fd, c, wbuf, reqs * resplen);
			}
		}
		if (r < 0) { close_conn(fd); return; }
		if (n < RBUF && !rdhup) return; /* drained: ET reports the next arrival */
	}
}

static int listen_on(const char *host, int port) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) die("socket");
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("setsockopt SO_REUSEADDR");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) die("setsockopt SO_REUSEPORT");
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "bad host %s\n", host); exit(2); }
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
	if (listen(fd, 4096) < 0) die("listen");
	return fd;
}

static void serve(int lfd) {
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) die("epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");
	struct epoll_event evs[512];
	for (;;) {
		int n = epoll_wait(ep, evs, 512, -1);
		if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				for (int k = 0; k < 64; k++) {
					int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (cfd < 0) break;
					if (cfd >= MAXFD) { close(cfd); continue; }
					int one = 1;
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					if (!(conns[cfd] = calloc(1, sizeof(struct conn)))) die("calloc");
					struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = cfd};
					if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0) close_conn(cfd);
				}
				continue;
			}
			struct conn *c = conns[fd];
			if (!c) continue;
			uint32_t e = evs[i].events;
			if (e & (EPOLLERR | EPOLLHUP)) { close_conn(fd); continue; }
			if ((e & EPOLLOUT) && c->out && flush_out(fd, c) < 0) { close_conn(fd); continue; }
			if (e & (EPOLLIN | EPOLLRDHUP)) on_readable(fd, c, (e & EPOLLRDHUP) != 0);
		}
	}
}

static pid_t *kids;
static int nkids;

static void stop(int sig) {
	(void)sig;
	for (int i = 0; i < nkids; i++) kill(kids[i], SIGTERM);
}

int main(int argc, char **argv) {
	if (argc != 4 || (strcmp(argv[1], "http") && strcmp(argv[1], "echo"))) {
		fprintf(stderr, "usage: floor http|echo HOST:PORT WORKERS\n");
		return 2;
	}
	echo_mode = !strcmp(argv[1], "echo");
	char *colon = strrchr(argv[2], ':');
	if (!colon) { fprintf(stderr, "bad address %s\n", argv[2]); return 2; }
	*colon = 0;
	int port = atoi(colon + 1), workers = atoi(argv[3]);
	if (workers < 1) workers = 1;
	signal(SIGPIPE, SIG_IGN);
	kids = calloc((size_t)workers, sizeof *kids);
	pid_t parent = getpid();
	for (int i = 0; i < workers; i++) {
		int lfd = listen_on(argv[2], port); /* bound before the next fork: no refused SYNs */
		pid_t pid = fork();
		if (pid < 0) die("fork");
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent) return 0;
			serve(lfd);
		}
		close(lfd);
		kids[nkids++] = pid;
	}
	struct sigaction sa = {.sa_handler = stop};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "floor %s on %s:%d, %d workers, pid %d\n", argv[1], argv[2], port, workers, (int)parent);
	while (wait(NULL) > 0 || errno == EINTR) {}
	return 0;
}
