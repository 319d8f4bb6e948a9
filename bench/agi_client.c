/* The Asterisk side of bench/agi_bench.py, in C: bursts of simultaneous FastAGI requests.
 *
 * Why C: Asterisk runs each channel's AGI in the channel's own thread, so a request's latency is
 * its own conversation plus the server's queue. A single-threaded Python client instead serves
 * all the burst's conversations in turns, and its own CPU (≈100 µs per connection) shows up in
 * every latency; here a request costs the client a few syscalls and the figure is the server's.
 * (A thread per request was tried too: 200 threads on 2 cores cost more than the server does.)
 *
 *   agi_client PORTS CONCURRENCY ROUNDS PAYLOADS PAUSE_MS
 *
 * PORTS: one or more, comma-separated; round r goes to the (r mod n)-th, so servers compared in
 * one run take turns and share whatever else the machine is doing. PAYLOADS: a file of requests
 * separated by NUL bytes, used in turn. PAUSE_MS: idle time between two rounds (0: back to back, as
 * a busy PBX; 100: each burst comes to an idle machine, as the first calls after a lull do).
 *
 * Per round, CONCURRENCY requests are started back to back; each notes the time, connects, sends
 * the environment at once (as a channel thread would), and is then served by one epoll loop that
 * answers every line the server sends with `200 result=1` until the server closes. The loop also
 * runs between two starts, so an early request's answer is not held up by the later starts.
 * Prints per round `# <port> <microseconds first connect -> last close>`, then one line per
 * request: `<port> <microseconds connect -> close> <CRM_TARGET>`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAYLOADS 100000
#define TARGET_LEN 32

typedef struct {
    int fd;
    double start;
    double ms;
    size_t used; /* bytes of an unfinished line kept in line */
    char line[512];
    char target[TARGET_LEN];
} request;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* The value of `SET VARIABLE CRM_TARGET "101"`, if this line is that command. */
static void note_target(request *r) {
    static const char prefix[] = "SET VARIABLE CRM_TARGET \"";
    size_t n = sizeof prefix - 1, i = 0;
    if (r->used < n || memcmp(r->line, prefix, n) != 0) return;
    while (n + i < r->used && r->line[n + i] != '"' && i < TARGET_LEN - 1) {
        r->target[i] = r->line[n + i];
        i++;
    }
    r->target[i] = 0;
}

/* Read what the server sent and answer each whole line. Returns 1 once the server has closed. */
static int on_readable(request *r) {
    static const char ok[] = "200 result=1\n";
    char chunk[4096];
    for (;;) {
        ssize_t got = recv(r->fd, chunk, sizeof chunk, 0);
        if (got == 0) return 1;
        if (got < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
        for (ssize_t i = 0; i < got; i++) {
            if (chunk[i] != '\n') {
                if (r->used < sizeof r->line) r->line[r->used++] = chunk[i];
                continue;
            }
            note_target(r);
            r->used = 0;
            if (send(r->fd, ok, sizeof ok - 1, MSG_NOSIGNAL) < 0) return 1;
        }
    }
}

/* Serve whatever is ready (waiting up to timeout ms); returns how many requests finished. */
static int poll_once(int ep, struct epoll_event *events, int max, int timeout) {
    int n = epoll_wait(ep, events, max, timeout), finished = 0;
    if (n == 0 && timeout > 0) {
        fprintf(stderr, "no answer for %d ms\n", timeout);
        exit(1);
    }
    for (int k = 0; k < n; k++) {
        request *r = events[k].data.ptr;
        if (r->fd < 0 || !on_readable(r)) continue;
        r->ms = now_ms() - r->start;
        epoll_ctl(ep, EPOLL_CTL_DEL, r->fd, NULL);
        close(r->fd);
        r->fd = -1;
        finished++;
    }
    return n < 0 ? 0 : finished;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORTS CONCURRENCY ROUNDS PAYLOADS PAUSE_MS\n", argv[0]);
        return 2;
    }
    int concurrency = atoi(argv[2]), rounds = atoi(argv[3]), pause_ms = atoi(argv[5]);
    int ports[16], nports = 0;
    for (char *p = strtok(argv[1], ","); p && nports < 16; p = strtok(NULL, ",")) ports[nports++] = atoi(p);
    if (!nports) die("no ports");
    struct sockaddr_in server = {.sin_family = AF_INET};
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    FILE *f = fopen(argv[4], "rb");
    if (!f || fseek(f, 0, SEEK_END) < 0) die("payloads");
    long size = ftell(f);
    rewind(f);
    char *data = malloc(size + 1);
    if (!data || fread(data, 1, size, f) != (size_t)size) die("payloads");
    fclose(f);
    data[size] = 0;
    static char *payload[MAX_PAYLOADS];
    static size_t length[MAX_PAYLOADS];
    int count = 0;
    for (size_t at = 0; at < (size_t)size && count < MAX_PAYLOADS;) {
        size_t len = strnlen(data + at, size - at);
        payload[count] = data + at;
        length[count++] = len;
        at += len + 1;
    }
    if (!count) die("no payloads");

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    request *reqs = calloc(concurrency, sizeof *reqs);
    struct epoll_event *events = calloc(concurrency, sizeof *events);
    int next = 0;
    for (int round = 0; round < rounds; round++) {
        int port = ports[round % nports], open = 0;
        server.sin_port = htons(port);
        double began = now_ms();
        for (int i = 0; i < concurrency; i++, next++) {
            request *r = &reqs[i];
            memset(r, 0, sizeof *r);
            strcpy(r->target, "?");
            r->start = now_ms();
            r->fd = socket(AF_INET, SOCK_STREAM, 0);
            if (r->fd < 0) die("socket");
            int one = 1;
            setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            /* Loopback: the handshake completes inside connect(); the server need not run. */
            if (connect(r->fd, (struct sockaddr *)&server, sizeof server) < 0) die("connect");
            size_t len = length[next % count];
            if (send(r->fd, payload[next % count], len, MSG_NOSIGNAL) != (ssize_t)len) die("send");
            fcntl(r->fd, F_SETFL, O_NONBLOCK);
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, r->fd, &ev) < 0) die("epoll_ctl");
            open++;
            open -= poll_once(ep, events, concurrency, 0);
        }
        while (open > 0) open -= poll_once(ep, events, concurrency, 10000);
        printf("# %d %.0f\n", port, (now_ms() - began) * 1000);
        for (int i = 0; i < concurrency; i++)
            printf("%d %.0f %s\n", port, reqs[i].ms * 1000, reqs[i].target);
        if (pause_ms > 0) usleep(pause_ms * 1000);
    }
    return 0;
}
