/*
 * The fan-out benchmark's load generator: many SSE streams that only count.
 *
 * A Python client costs about as much CPU per socket read as the server spends
 * per write, so on a 2-core box it, not the server, would set the ceiling. This
 * one is an epoll loop that reads 64 KB at a time and counts frames with
 * memmem: the server is what gets measured.
 *
 * usage: fanout_client HOST PORT PATH COOKIE STREAMS
 * Opens STREAMS connections (GET PATH, Cookie: COOKIE), then every
 * PROGRESS_MS prints "progress <seconds> <frames> <open>" and, when stdin
 * closes or on SIGTERM, one line per stream, "stream <opening id> <last id>
 * <metrics frames>", then "done". A stream got every batch exactly once iff
 * its frame count equals last id - opening id (the server's ids strictly rise).
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BYTES 65536
#define PROGRESS_MS 20
#define MAX_EVENTS 512
/* Longer than any pattern we look for, so none is missed across two reads. */
#define CARRY 32

static const char FRAME[] = "\nevent: metrics\n";
static const char ID[] = "\nid: ";

struct stream {
    int fd;
    int open;
    long long opening_id; /* -1 until the opening frame's id is seen */
    long long last_id;
    long long frames;
    size_t carry_len;
    char carry[CARRY];
};

static volatile sig_atomic_t stopping = 0;
static void on_term(int sig) { (void)sig; stopping = 1; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Count frames and find the newest complete id in carry + data. */
static void scan(struct stream *s, const char *data, size_t len) {
    static char buf[CARRY + READ_BYTES];
    memcpy(buf, s->carry, s->carry_len);
    memcpy(buf + s->carry_len, data, len);
    size_t total = s->carry_len + len;
    const char *p = buf, *end = buf + total;
    /* A match lying wholly inside the carry was counted on the previous read. */
    const char *fresh = buf + s->carry_len;
    while ((p = memmem(p, end - p, FRAME, sizeof FRAME - 1)) != NULL) {
        if (p + sizeof FRAME - 1 > fresh) s->frames++;
        p += sizeof FRAME - 1;
    }
    p = buf;
    const char *id;
    while ((id = memmem(p, end - p, ID, sizeof ID - 1)) != NULL) {
        const char *digits = id + sizeof ID - 1, *q = digits;
        long long value = 0;
        while (q < end && *q >= '0' && *q <= '9') value = value * 10 + (*q++ - '0');
        if (q < end && *q == '\n' && q > digits) {
            if (s->opening_id < 0) s->opening_id = value;
            if (value > s->last_id) s->last_id = value;
        }
        p = digits;
    }
    s->carry_len = total < CARRY ? total : CARRY;
    memcpy(s->carry, end - s->carry_len, s->carry_len);
}

static int open_stream(struct sockaddr_in *addr, const char *request, size_t request_len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)addr, sizeof *addr) < 0) { close(fd); return -1; }
    size_t sent = 0;
    while (sent < request_len) {
        ssize_t n = write(fd, request + sent, request_len - sent);
        if (n <= 0) { close(fd); return -1; }
        sent += (size_t)n;
    }
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT PATH COOKIE STREAMS\n", argv[0]);
        return 2;
    }
    int count = atoi(argv[5]);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (count < 1 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        fprintf(stderr, "bad host or stream count\n");
        return 2;
    }
    char request[4096];
    int request_len = snprintf(request, sizeof request,
        "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAccept: text/event-stream\r\nCookie: %s\r\n\r\n",
        argv[3], argv[1], argv[2], argv[4]);
    if (request_len <= 0 || request_len >= (int)sizeof request) return 2;

    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    int ep = epoll_create1(0);
    struct stream *streams = calloc((size_t)count, sizeof *streams);
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = 0; /* stdin: its end means stop */
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    int open_count = 0, failed = 0;
    for (int i = 0; i < count; i++) {
        streams[i].opening_id = -1;
        streams[i].last_id = -1;
        streams[i].fd = open_stream(&addr, request, (size_t)request_len);
        if (streams[i].fd < 0) { failed++; continue; }
        streams[i].open = 1;
        open_count++;
        ev.events = EPOLLIN;
        ev.data.u64 = (uint64_t)i + 1; /* 0 is stdin */
        epoll_ctl(ep, EPOLL_CTL_ADD, streams[i].fd, &ev);
    }
    printf("opened %d %d\n", open_count, failed);
    fflush(stdout);

    static char data[READ_BYTES];
    struct epoll_event events[MAX_EVENTS];
    double start = now(), next_progress = start + PROGRESS_MS / 1000.0;
    long long frames = 0;
    while (!stopping) {
        int n = epoll_wait(ep, events, MAX_EVENTS, PROGRESS_MS / 4);
        if (n < 0 && errno != EINTR) break;
        for (int k = 0; k < n; k++) {
            if (events[k].data.u64 == 0) { stopping = 1; break; }
            struct stream *s = &streams[events[k].data.u64 - 1];
            ssize_t got = read(s->fd, data, sizeof data);
            if (got > 0) {
                long long before = s->frames;
                scan(s, data, (size_t)got);
                frames += s->frames - before;
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                close(s->fd);
                s->open = 0;
                open_count--;
            }
        }
        double t = now();
        if (t >= next_progress) {
            printf("progress %.3f %lld %d\n", t - start, frames, open_count);
            fflush(stdout);
            next_progress = t + PROGRESS_MS / 1000.0;
        }
    }
    for (int i = 0; i < count; i++) {
        printf("stream %lld %lld %lld\n", streams[i].opening_id, streams[i].last_id,
               streams[i].frames);
    }
    printf("done\n");
    fflush(stdout);
    return 0;
}
