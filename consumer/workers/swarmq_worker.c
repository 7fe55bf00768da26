/* SPDX-License-Identifier: Apache-2.0 */
/*
 * swarmq_worker.c: the reference pool worker in C (libc only; built as
 * swarmq-worker). A template: replace run_task() with your own code.
 *
 * DESIGN
 *   One task at a time on one thread, blocking reads of stdin and writes
 *   of stdout, as docs/worker-protocol.md describes: send a hello, then
 *   answer each task frame with a result frame and each ping with a pong,
 *   until EOF on stdin. Frames are bounded (WORKER_FRAME_MAX): a longer
 *   one is a protocol error and the worker exits 2, which swarmq sees as a
 *   crash and handles (retry elsewhere, replace the worker).
 *
 *   Demonstration operations, from the payload "<op> <argument>": echo,
 *   upper, pid, sleep MS, fail TEXT, crash (exit mid-task), hang (answer,
 *   then stop reading); anything else echoes the payload.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORKER_FRAME_MAX    (64u * 1024 * 1024)
#define PROTOCOL            1
#define SQ_WORKER_MIN(a, b) ((a) < (b) ? (a) : (b))

static int read_exact(void *buf, size_t len) {
        unsigned char *p = buf;
        while (len) {
                ssize_t r = read(0, p, len);
                if (r > 0) {
                        p += r;
                        len -= (size_t)r;
                } else if (r == 0) {
                        return 0; /* EOF */
                } else if (errno != EINTR) {
                        return -1;
                }
        }
        return 1;
}

static int write_all(const void *buf, size_t len) {
        const unsigned char *p = buf;
        while (len) {
                ssize_t w = write(1, p, len);
                if (w > 0) {
                        p += w;
                        len -= (size_t)w;
                } else if (w < 0 && errno != EINTR) {
                        return -1;
                }
        }
        return 0;
}

static void put_u32(unsigned char *p, uint32_t v) {
        p[0] = (unsigned char)(v >> 24);
        p[1] = (unsigned char)(v >> 16);
        p[2] = (unsigned char)(v >> 8);
        p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
               (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* One frame: type and body (the body in one write with its header). */
static int write_frame(char type, const void *body, size_t len) {
        unsigned char hdr[5];
        put_u32(hdr, (uint32_t)(len + 1));
        hdr[4] = (unsigned char)type;
        if (write_all(hdr, 5) < 0 || (len && write_all(body, len) < 0))
                return -1;
        return 0;
}

static int write_result(uint32_t seq, int ok, const char *error,
                        const void *output, size_t output_len) {
        size_t elen         = error ? strlen(error) : 0;
        size_t len          = 9 + elen + output_len;
        unsigned char *body = malloc(len ? len : 1);
        int rc;

        if (!body)
                return -1;
        put_u32(body, seq);
        body[4] = ok ? 0 : 1;
        put_u32(body + 5, (uint32_t)elen);
        if (elen)
                memcpy(body + 9, error, elen);
        if (output_len)
                memcpy(body + 9 + elen, output, output_len);
        rc = write_frame('R', body, len);
        free(body);
        return rc;
}

/* Skips a length-prefixed string of the task body; -1 when cut. */
static int skip_str(const unsigned char *body, size_t len, size_t *off) {
        uint32_t n;
        if (*off + 4 > len)
                return -1;
        n = get_u32(body + *off);
        if (n > len - *off - 4)
                return -1;
        *off += 4 + n;
        return 0;
}

static int run_task(const unsigned char *body, size_t len) {
        char out[256];
        const char *payload, *arg;
        size_t off = 4, plen, oplen, i, n;
        uint32_t seq, nheaders;

        if (len < 4)
                return -1;
        seq = get_u32(body);
        if (skip_str(body, len, &off) < 0 || skip_str(body, len, &off) < 0 ||
            off + 12 > len)
                return -1;
        /* deadline_ms and attempt are not used by these operations */
        nheaders = get_u32(body + off + 8);
        off += 12;
        for (i = 0; i < nheaders; i++) {
                if (skip_str(body, len, &off) < 0 ||
                    skip_str(body, len, &off) < 0)
                        return -1;
        }
        payload = (const char *)body + off;
        plen    = len - off;
        for (oplen = 0; oplen < plen && payload[oplen] != ' '; oplen++)
                ;
        arg = oplen < plen ? payload + oplen + 1 : payload + plen;
        n   = (size_t)(payload + plen - arg);

        if (oplen == 4 && !memcmp(payload, "echo", 4))
                return write_result(seq, 1, NULL, arg, n);
        if (oplen == 5 && !memcmp(payload, "upper", 5)) {
                char *up = malloc(n ? n : 1);
                int rc;
                if (!up)
                        return -1;
                for (i = 0; i < n; i++)
                        up[i] = (char)toupper((unsigned char)arg[i]);
                rc = write_result(seq, 1, NULL, up, n);
                free(up);
                return rc;
        }
        if (oplen == 3 && !memcmp(payload, "pid", 3)) {
                snprintf(out, sizeof(out), "pid=%d", (int)getpid());
                return write_result(seq, 1, NULL, out, strlen(out));
        }
        if (oplen == 5 && !memcmp(payload, "sleep", 5)) {
                char num[32];
                long ms;
                struct timespec ts;
                snprintf(num, sizeof(num), "%.*s", (int)SQ_WORKER_MIN(n, 31),
                         arg);
                ms         = strtol(num, NULL, 10);
                ts.tv_sec  = ms / 1000;
                ts.tv_nsec = (ms % 1000) * 1000000;
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                snprintf(out, sizeof(out), "slept %ld pid=%d", ms,
                         (int)getpid());
                return write_result(seq, 1, NULL, out, strlen(out));
        }
        if (oplen == 4 && !memcmp(payload, "fail", 4)) {
                snprintf(out, sizeof(out), "%.*s", (int)SQ_WORKER_MIN(n, 255),
                         arg);
                return write_result(seq, 0, n ? out : "failed on purpose", NULL,
                                    0);
        }
        if (oplen == 5 && !memcmp(payload, "crash", 5))
                _exit(3);
        if (oplen == 4 && !memcmp(payload, "hang", 4)) {
                snprintf(out, sizeof(out), "hanging pid=%d", (int)getpid());
                if (write_result(seq, 1, NULL, out, strlen(out)) < 0)
                        return -1;
                for (;;)
                        pause();
        }
        return write_result(seq, 1, NULL, payload, plen);
}

int main(int argc, char **argv) {
        unsigned char hdr[5];
        unsigned char *body = NULL;
        char hello[1024];
        int rc = 0;

        /* Capabilities on the command line ("a,b"), else none claimed. */
        if (argc > 1) {
                char caps[768] = "";
                const char *p  = argv[1];
                size_t used    = 0;
                while (*p && used + 8 < sizeof(caps)) {
                        const char *comma = strchr(p, ',');
                        size_t len = comma ? (size_t)(comma - p) : strlen(p);
                        used += (size_t)snprintf(
                            caps + used, sizeof(caps) - used, "%s\"%.*s\"",
                            used ? "," : "", (int)len, p);
                        p += len + (comma ? 1 : 0);
                }
                snprintf(hello, sizeof(hello),
                         "{\"protocol\":%d,\"worker\":\"swarmq-worker\","
                         "\"version\":\"1.0\",\"capabilities\":[%s]}",
                         PROTOCOL, caps);
        } else {
                snprintf(hello, sizeof(hello),
                         "{\"protocol\":%d,\"worker\":\"swarmq-worker\","
                         "\"version\":\"1.0\"}",
                         PROTOCOL);
        }
        if (write_frame('H', hello, strlen(hello)) < 0)
                return 1;

        for (;;) {
                uint32_t len;
                int r = read_exact(hdr, 5);
                if (r == 0)
                        break; /* EOF: swarmq asks us to exit */
                if (r < 0) {
                        rc = 1;
                        break;
                }
                len = get_u32(hdr);
                if (len < 1 || len > WORKER_FRAME_MAX) {
                        fprintf(stderr, "swarmq-worker: bad frame length %u\n",
                                len);
                        rc = 2;
                        break;
                }
                free(body);
                body = malloc(len);
                if (!body || read_exact(body, len - 1) != 1) {
                        rc = 1;
                        break;
                }
                if (hdr[4] == 'T') {
                        if (run_task(body, len - 1) < 0) {
                                fprintf(stderr,
                                        "swarmq-worker: bad task frame\n");
                                rc = 2;
                                break;
                        }
                } else if (hdr[4] == 'P') {
                        if (write_frame('O', body, len - 1) < 0) {
                                rc = 1;
                                break;
                        }
                } else {
                        fprintf(stderr,
                                "swarmq-worker: unexpected frame type 0x%02x\n",
                                hdr[4]);
                        rc = 2;
                        break;
                }
        }
        free(body);
        return rc;
}
