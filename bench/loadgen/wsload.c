/*
 * wsload: single-threaded epoll WebSocket load generator for the humphrey-ws benchmark suite.
 *
 * Scenarios (see bench/README.md):
 *   echo-small    N connections, P pipelined small text messages in flight each; msgs/s, RTT p50/p99
 *   echo-large    N connections, one large binary message in flight each; MB/s echoed
 *   broadcast     N subscribers + 1 publisher, bounded window; deliveries/s, lost/reordered
 *                 (--ports P1,P2,...: subscribers alternate between several servers that relay to
 *                 each other, the publisher on the first)
 *   connect-rate  open/handshake/close N connections with bounded concurrency; handshakes/s
 *   idle-memory   open N idle connections, announce readiness, hold until stdin says so
 *
 * Progress events and the final result are single JSON lines on stdout.
 * Build: gcc -O2 -o wsload wsload.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* RFC 6455 section 1.3 sample key and its accept value. */
static const char WS_KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char WS_ACCEPT[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

enum scenario { SC_ECHO_SMALL, SC_ECHO_LARGE, SC_BROADCAST, SC_CONNECT_RATE, SC_IDLE };
enum cstate { CS_FREE, CS_CONNECTING, CS_HANDSHAKE, CS_OPEN, CS_CLOSING };
enum role { R_ECHO, R_SUB, R_PUB, R_CYCLE };

typedef struct conn {
  int fd;
  uint32_t gen;
  uint8_t state;
  uint8_t role;
  uint8_t epollout;  /* EPOLLOUT currently registered */
  uint8_t msg_op;    /* opcode of the message being assembled */
  uint8_t skip_fin;  /* FIN bit of the frame being skipped */
  uint8_t got_close; /* connect-rate: server's close frame received, waiting for its FIN */
  uint32_t idx;
  /* output: owned buffer first, then an optional external buffer */
  uint8_t *ob;
  size_t ob_off, ob_len, ob_cap;
  const uint8_t *ext;
  size_t ext_off, ext_len;
  /* input */
  uint8_t *in;
  size_t in_len, in_cap;
  uint64_t skip;     /* payload bytes still to skip in a large frame */
  uint64_t msg_len;  /* payload bytes of the message so far */
  /* echo */
  uint64_t sent, recv;
  uint64_t *ring;
  /* broadcast */
  uint64_t expect;
  /* timing */
  uint64_t t_start;
} conn;

/* ---- options ---- */
static enum scenario sc;
static const char *sc_name;
static const char *host = "127.0.0.1";
static int port;
/* --ports: several servers; subscriber i goes to ports[i % nports], the publisher to ports[0]. */
#define MAX_PORTS 16
static int ports[MAX_PORTS];
static int nports;
static const char *path = "/ws";
static const char *label = "";
static double duration = 5.0, warmup = 1.0, timeout_s = 300.0, drain_s = 10.0;
static long nconns = -1, pipeline_depth = 16, msg_size = -1, window_sz = 16, concurrency = 200, nsources = 16;
static long warmup_conns = -1;
static long rcv_batch = 8;

/* ---- state ---- */
static int ep;
static conn *conns;
static long nslots;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static char request[512];
static size_t request_len;
static struct sockaddr_in dst;
static struct sockaddr_in dsts[MAX_PORTS];
static uint64_t t0_ns;
static uint64_t errors, proto_errors, conn_failures, mismatches, close_errors, close_timeouts;
#define CLOSE_GRACE_NS 1000000000ull
static long established, closed_unexpected;
static int in_window, window_done;
static uint64_t win_start_ns, win_end_ns;
static struct rusage ru_start, ru_end;
static uint8_t *large_frame;
static size_t large_frame_len;
static uint64_t ring_mask;

/* counters in the measurement window */
static uint64_t w_msgs, w_bytes, w_deliveries, w_handshakes;
static uint64_t n_reads, n_writes, n_waits; /* syscall counts (whole run) */
static uint64_t total_msgs;

/* latency histogram, 1 us buckets up to ~1 s, then overflow */
#define HIST_N (1u << 20)
static uint32_t *hist;
static uint64_t hist_count, hist_over, hist_max;

/* broadcast */
static conn *publisher;
static conn *designated;
static uint64_t pub_seq, designated_seen, lost_gaps, reordered, pub_received;
static int publishing;
static long subs_caught_up;

/* connect-rate */
static long cr_started, cr_done, cr_target, cr_inflight;
static int cr_measuring;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t rnd32(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

static void die(const char *msg) {
  printf("{\"scenario\":\"%s\",\"target\":\"%s\",\"error\":\"%s\",\"errno\":%d}\n", sc_name ? sc_name : "", label, msg,
         errno);
  fflush(stdout);
  exit(2);
}

static void event_line(const char *name) {
  printf("{\"event\":\"%s\",\"t\":%.6f}\n", name, (now_ns() - t0_ns) / 1e9);
  fflush(stdout);
}

static void hist_add(uint64_t ns) {
  uint64_t us = ns / 1000;
  hist_count++;
  if (us > hist_max) hist_max = us;
  if (us >= HIST_N) hist_over++;
  else hist[us]++;
}

static double hist_pct(double p) {
  if (!hist_count) return 0;
  uint64_t want = (uint64_t)(p * (double)hist_count);
  if (want >= hist_count) want = hist_count - 1;
  uint64_t acc = 0;
  for (uint32_t i = 0; i < HIST_N; i++) {
    acc += hist[i];
    if (acc > want) return (double)i;
  }
  return (double)hist_max;
}

/* ---- buffers ---- */
static void ob_reserve(conn *c, size_t extra) {
  if (c->ob_off && c->ob_off == c->ob_len) c->ob_off = c->ob_len = 0;
  if (c->ob_len + extra <= c->ob_cap) return;
  if (c->ob_off) {
    memmove(c->ob, c->ob + c->ob_off, c->ob_len - c->ob_off);
    c->ob_len -= c->ob_off;
    c->ob_off = 0;
    if (c->ob_len + extra <= c->ob_cap) return;
  }
  size_t cap = c->ob_cap ? c->ob_cap : 256;
  while (cap < c->ob_len + extra) cap *= 2;
  c->ob = realloc(c->ob, cap);
  if (!c->ob) die("oom");
  c->ob_cap = cap;
}

static void mask_copy(uint8_t *dstb, const uint8_t *src, size_t n, uint32_t key) {
  uint8_t k[4];
  memcpy(k, &key, 4);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t w;
    memcpy(&w, src + i, 4);
    w ^= key;
    memcpy(dstb + i, &w, 4);
  }
  for (; i < n; i++) dstb[i] = src[i] ^ k[i & 3];
}

/* Append one masked client frame (FIN set) to the connection's output buffer. */
static void queue_frame(conn *c, int opcode, const uint8_t *payload, size_t len) {
  ob_reserve(c, len + 14);
  uint8_t *p = c->ob + c->ob_len;
  size_t h = 0;
  p[h++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    p[h++] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    p[h++] = 0x80 | 126;
    p[h++] = (uint8_t)(len >> 8);
    p[h++] = (uint8_t)len;
  } else {
    p[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) p[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  uint32_t key = rnd32();
  memcpy(p + h, &key, 4);
  h += 4;
  mask_copy(p + h, payload, len, key);
  c->ob_len += h + len;
}

static void set_epollout(conn *c, int want) {
  if (c->epollout == want) return;
  struct epoll_event ev;
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
  ev.data.u64 = ((uint64_t)c->gen << 32) | c->idx;
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod");
  c->epollout = (uint8_t)want;
}

static void conn_fail(conn *c, const char *why);

/* Write as much pending output as the socket takes; arm EPOLLOUT if some remains. */
static int flush_out(conn *c) {
  while (c->ob_off < c->ob_len) {
    ssize_t n = write(c->fd, c->ob + c->ob_off, c->ob_len - c->ob_off);
    n_writes++;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_epollout(c, 1);
        return 0;
      }
      if (errno == EINTR) continue;
      conn_fail(c, "write");
      return -1;
    }
    c->ob_off += (size_t)n;
  }
  c->ob_off = c->ob_len = 0;
  while (c->ext && c->ext_off < c->ext_len) {
    ssize_t n = write(c->fd, c->ext + c->ext_off, c->ext_len - c->ext_off);
    n_writes++;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_epollout(c, 1);
        return 0;
      }
      if (errno == EINTR) continue;
      conn_fail(c, "write");
      return -1;
    }
    c->ext_off += (size_t)n;
  }
  c->ext = NULL;
  c->ext_off = c->ext_len = 0;
  set_epollout(c, 0);
  return 0;
}

/* ---- connection lifecycle ---- */
static size_t in_cap_for(void) {
  switch (sc) {
    case SC_ECHO_LARGE: return 256 * 1024;
    case SC_ECHO_SMALL: return 16 * 1024;
    case SC_BROADCAST: return 16 * 1024;
    default: return 1024;
  }
}

static void start_conn(conn *c) {
  c->gen++;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (nsources > 0) {
    /* Spread connections over 127.0.0.2 .. 127.0.0.(1+nsources); the port is picked at connect(). */
    static uint32_t rr;
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + (rr++ % (uint32_t)nsources));
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) die("bind source address");
  }
  c->state = CS_CONNECTING;
  c->epollout = 1;
  c->ob_off = c->ob_len = 0;
  c->ext = NULL;
  c->ext_off = c->ext_len = 0;
  c->in_len = 0;
  c->skip = 0;
  c->msg_len = 0;
  c->sent = c->recv = c->expect = 0;
  c->got_close = 0;
  if (!c->in) {
    c->in_cap = in_cap_for();
    c->in = malloc(c->in_cap);
    if (!c->in) die("oom");
  }
  c->t_start = now_ns();
  struct epoll_event ev;
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = ((uint64_t)c->gen << 32) | c->idx;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl add");
  const struct sockaddr_in *to = nports > 1 && c->role == R_SUB ? &dsts[c->idx % (uint32_t)nports] : &dst;
  int r = connect(c->fd, (const struct sockaddr *)to, sizeof *to);
  if (r < 0 && errno != EINPROGRESS) {
    conn_fail(c, "connect");
    return;
  }
}

static void cr_next(void);

static void release_conn(conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->state = CS_FREE;
  c->gen++;
  if (sc == SC_CONNECT_RATE) {
    cr_inflight--;
    cr_next();
  }
}

static void conn_fail(conn *c, const char *why) {
  (void)why;
  if (c->state == CS_FREE) return;
  if (c->state == CS_CONNECTING || c->state == CS_HANDSHAKE) conn_failures++;
  else if (c->state == CS_OPEN) closed_unexpected++;
  else if (c->state != CS_CLOSING) errors++;
  if (sc == SC_CONNECT_RATE) {
    if (c->state == CS_CLOSING) close_errors++;
    cr_done++;
  }
  release_conn(c);
}

/* ---- scenario behaviour ---- */
static const uint8_t HEX[] = "0123456789abcdef";

static void small_payload(uint8_t *p, uint64_t seq) {
  for (int i = 15; i >= 0; i--) {
    p[i] = HEX[seq & 15];
    seq >>= 4;
  }
  for (long i = 16; i < msg_size; i++) p[i] = (uint8_t)('a' + (i & 15));
}

static void echo_small_send(conn *c, uint64_t now) {
  uint8_t buf[1024];
  small_payload(buf, c->sent);
  c->ring[c->sent & ring_mask] = now;
  c->sent++;
  queue_frame(c, 1, buf, (size_t)msg_size);
}

static void publish(uint64_t now) {
  (void)now;
  if (!publishing) return;
  int queued = 0;
  while (pub_seq < designated_seen + (uint64_t)window_sz) {
    uint8_t buf[1024];
    memset(buf, 'p', (size_t)msg_size);
    memcpy(buf, &pub_seq, 8);
    queue_frame(publisher, 2, buf, (size_t)msg_size);
    pub_seq++;
    queued = 1;
  }
  if (queued && !publisher->epollout) flush_out(publisher);
}

static void on_open(conn *c, uint64_t now);

static void on_message(conn *c, int op, const uint8_t *payload, uint64_t len, uint64_t now) {
  total_msgs++;
  switch (sc) {
    case SC_ECHO_SMALL: {
      if (op != 1 || len != (uint64_t)msg_size) mismatches++;
      else if (payload) {
        uint8_t exp[16];
        uint64_t s = c->recv;
        for (int i = 15; i >= 0; i--) {
          exp[i] = HEX[s & 15];
          s >>= 4;
        }
        if (memcmp(exp, payload, 16) != 0) mismatches++;
      }
      uint64_t ts = c->ring[c->recv & ring_mask];
      c->recv++;
      if (in_window) {
        w_msgs++;
        w_bytes += len;
        hist_add(now - ts);
      }
      if (!window_done) echo_small_send(c, now);
      break;
    }
    case SC_ECHO_LARGE: {
      if (op != 2 || len != (uint64_t)msg_size) mismatches++;
      uint64_t ts = c->ring[0];
      c->recv++;
      if (in_window) {
        w_msgs++;
        w_bytes += len;
        hist_add(now - ts);
      }
      if (!window_done) {
        c->ring[0] = now;
        c->sent++;
        c->ext = large_frame;
        c->ext_off = 0;
        c->ext_len = large_frame_len;
      }
      break;
    }
    case SC_BROADCAST: {
      if (c->role == R_PUB) {
        pub_received++;
        break;
      }
      if (op != 2 || len != (uint64_t)msg_size || !payload) {
        mismatches++;
        break;
      }
      uint64_t seq;
      memcpy(&seq, payload, 8);
      if (seq >= c->expect) {
        lost_gaps += seq - c->expect;
        c->expect = seq + 1;
        if (!publishing && c->expect == pub_seq) subs_caught_up++;
      } else {
        reordered++;
      }
      if (in_window) w_deliveries++;
      if (c == designated && c->expect > designated_seen) {
        designated_seen = c->expect;
        publish(now);
      }
      break;
    }
    default:
      break;
  }
}

static void on_close_frame(conn *c, uint64_t now) {
  if (sc == SC_CONNECT_RATE && c->state == CS_CLOSING) {
    /* Close handshake done; the server should now close TCP first (RFC 6455 7.1.1), which
       keeps TIME_WAIT off the client side. Wait for that end of stream; a server that does not
       close within CLOSE_GRACE gets an abortive close (see reap_closing). */
    c->got_close = 1;
    c->t_start = now;
    c->in_len = 0;
    return;
  }
  closed_unexpected++;
  c->state = CS_CLOSING;
  release_conn(c);
}

/* Parse server frames from c->in. Returns -1 if the connection was released. */
static int parse_frames(conn *c, uint64_t now) {
  size_t pos = 0;
  uint32_t gen = c->gen;
  for (;;) {
    if (c->skip) {
      size_t avail = c->in_len - pos;
      size_t n = avail < c->skip ? avail : (size_t)c->skip;
      pos += n;
      c->skip -= n;
      if (c->skip) break;
      if (c->skip_fin) on_message(c, c->msg_op, NULL, c->msg_len, now);
      continue;
    }
    size_t avail = c->in_len - pos;
    if (avail < 2) break;
    const uint8_t *p = c->in + pos;
    int fin = p[0] & 0x80, op = p[0] & 0x0f, masked = p[1] & 0x80;
    uint64_t len = p[1] & 0x7f;
    size_t hl = 2;
    if (len == 126) hl += 2;
    else if (len == 127) hl += 8;
    if (masked) {
      proto_errors++;
      conn_fail(c, "masked server frame");
      return -1;
    }
    if (avail < hl) break;
    if (len == 126) len = ((uint64_t)p[2] << 8) | p[3];
    else if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
    }
    if (op >= 8) {
      if (avail < hl + len) break;
      if (op == 8) {
        on_close_frame(c, now);
        return -1;
      }
      if (op == 9) queue_frame(c, 10, p + hl, (size_t)len);
      pos += hl + len;
      continue;
    }
    if (op != 0) {
      c->msg_op = (uint8_t)op;
      c->msg_len = 0;
    }
    c->msg_len += len;
    if (hl + len <= avail) {
      pos += hl + len;
      if (fin) on_message(c, c->msg_op, op != 0 ? p + hl : NULL, c->msg_len, now);
      if (c->gen != gen) return -1;
      continue;
    }
    if (hl + len <= c->in_cap) break; /* wait for the rest; it fits once compacted */
    pos += hl;
    c->skip = len - (avail - hl);
    c->skip_fin = (uint8_t)(fin != 0);
    pos = c->in_len;
    if (!c->skip) {
      if (fin) on_message(c, c->msg_op, NULL, c->msg_len, now);
    }
    break;
  }
  if (pos) {
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
  }
  return 0;
}

static int handshake_done(conn *c, uint64_t now) {
  /* Find the end of the response head. */
  uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) {
    if (c->in_len == c->in_cap) {
      conn_fail(c, "response head too long");
      return -1;
    }
    return 0;
  }
  size_t head = (size_t)(end - c->in) + 4;
  int ok = c->in_len >= 12 && memcmp(c->in, "HTTP/1.1 101", 12) == 0;
  if (ok) {
    *end = 0;
    char *a = strcasestr((char *)c->in, "\r\nsec-websocket-accept:");
    ok = 0;
    if (a) {
      a += 23;
      while (*a == ' ' || *a == '\t') a++;
      ok = strncmp(a, WS_ACCEPT, sizeof WS_ACCEPT - 1) == 0;
    }
  }
  if (!ok) {
    conn_fail(c, "bad handshake response");
    return -1;
  }
  memmove(c->in, c->in + head, c->in_len - head);
  c->in_len -= head;
  c->state = CS_OPEN;
  on_open(c, now);
  if (c->state != CS_OPEN) return -1;
  return 1;
}

static void on_open(conn *c, uint64_t now) {
  established++;
  if (sc == SC_CONNECT_RATE) {
    if (cr_measuring) {
      w_handshakes++;
      hist_add(now - c->t_start);
    }
    static const uint8_t code[2] = {0x03, 0xe8};
    queue_frame(c, 8, code, 2);
    c->state = CS_CLOSING;
    flush_out(c);
  }
}

static void on_readable(conn *c, uint64_t now) {
  if (c->in_len == c->in_cap) {
    /* Only possible for a frame that does not fit and is not yet in skip mode. */
    conn_fail(c, "input buffer full");
    return;
  }
  ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
  n_reads++;
  if (n == 0) {
    if (sc == SC_CONNECT_RATE && c->state == CS_CLOSING) {
      cr_done++;
      release_conn(c);
      return;
    }
    conn_fail(c, "eof");
    return;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    conn_fail(c, "read");
    return;
  }
  c->in_len += (size_t)n;
  if (c->got_close) {
    c->in_len = 0; /* nothing is expected after the close frame but the end of stream */
    return;
  }
  if (c->state == CS_HANDSHAKE) {
    if (handshake_done(c, now) <= 0) return;
  }
  if (parse_frames(c, now) < 0) return;
  if ((c->ob_len > c->ob_off || c->ext) && !c->epollout) flush_out(c);
}

static void on_writable(conn *c) {
  if (c->state == CS_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
      errno = err;
      conn_fail(c, "connect");
      return;
    }
    c->state = CS_HANDSHAKE;
    ob_reserve(c, request_len);
    memcpy(c->ob + c->ob_len, request, request_len);
    c->ob_len += request_len;
  }
  flush_out(c);
}

/* ---- connect-rate driver ---- */
static void reap_closing(uint64_t now) {
  for (long i = 0; i < nslots; i++) {
    conn *c = &conns[i];
    if (c->state != CS_CLOSING || !c->got_close || now - c->t_start < CLOSE_GRACE_NS) continue;
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close_timeouts++;
    cr_done++;
    release_conn(c);
  }
}

static void cr_next(void) {
  static int busy;
  if (busy) return;
  busy = 1;
  while (cr_inflight < concurrency && cr_started < cr_target) {
    conn *c = NULL;
    for (long i = 0; i < nslots; i++)
      if (conns[i].state == CS_FREE) {
        c = &conns[i];
        break;
      }
    if (!c) break;
    c->role = R_CYCLE;
    cr_started++;
    cr_inflight++;
    start_conn(c);
  }
  busy = 0;
}

/* ---- main ---- */
static void usage(void) {
  fprintf(stderr,
          "usage: wsload --scenario S --port P|--ports P1,P2,... [--host 127.0.0.1] [--path /ws] [--duration s] [--warmup s]\n"
          "              [--connections N] [--pipeline N] [--size B] [--window N] [--concurrency N]\n"
          "              [--sources N] [--warmup-conns N] [--timeout s] [--label name]\n");
  exit(1);
}

static double cpu_s(const struct rusage *r) {
  return r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 + r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
}

static void print_result(const char *status) {
  double win = (win_end_ns > win_start_ns ? win_end_ns - win_start_ns : 0) / 1e9;
  double gcpu = cpu_s(&ru_end) - cpu_s(&ru_start);
  printf("{\"scenario\":\"%s\",\"target\":\"%s\",\"status\":\"%s\",\"connections\":%ld,\"window_s\":%.6f,"
         "\"gen_cpu_s\":%.6f,\"gen_cpu_pct\":%.2f,\"conn_failures\":%llu,\"closed_unexpected\":%ld,"
         "\"protocol_errors\":%llu,\"mismatches\":%llu,\"reads\":%llu,\"writes\":%llu,\"epoll_waits\":%llu",
         sc_name, label, status, nconns, win, gcpu, win > 0 ? 100.0 * gcpu / win : 0.0,
         (unsigned long long)conn_failures, closed_unexpected, (unsigned long long)proto_errors,
         (unsigned long long)mismatches, (unsigned long long)n_reads, (unsigned long long)n_writes,
         (unsigned long long)n_waits);
  switch (sc) {
    case SC_ECHO_SMALL:
    case SC_ECHO_LARGE:
      printf(",\"size\":%ld,\"pipeline\":%ld,\"msgs\":%llu,\"bytes\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.2f,"
             "\"lat_p50_us\":%.0f,\"lat_p99_us\":%.0f,\"lat_max_us\":%llu",
             msg_size, sc == SC_ECHO_SMALL ? pipeline_depth : 1, (unsigned long long)w_msgs,
             (unsigned long long)w_bytes, win > 0 ? w_msgs / win : 0.0, win > 0 ? w_bytes / win / 1e6 : 0.0,
             hist_pct(0.50), hist_pct(0.99), (unsigned long long)hist_max);
      break;
    case SC_BROADCAST: {
      uint64_t behind = 0;
      for (long i = 0; i < nslots; i++) {
        conn *c = &conns[i];
        if (c->role == R_SUB) behind += pub_seq - (c->expect < pub_seq ? c->expect : pub_seq);
      }
      printf(",\"subscribers\":%ld,\"size\":%ld,\"window\":%ld,\"rcv_batch\":%ld,\"published\":%llu,\"deliveries\":%llu,"
             "\"deliveries_per_s\":%.1f,\"lost\":%llu,\"reordered\":%llu,\"publisher_received\":%llu,\"servers\":%d",
             nconns, msg_size, window_sz, rcv_batch, (unsigned long long)pub_seq, (unsigned long long)w_deliveries,
             win > 0 ? w_deliveries / win : 0.0, (unsigned long long)(lost_gaps + behind),
             (unsigned long long)reordered, (unsigned long long)pub_received, nports > 1 ? nports : 1);
      break;
    }
    case SC_CONNECT_RATE:
      printf(",\"concurrency\":%ld,\"sources\":%ld,\"close_errors\":%llu,\"close_timeouts\":%llu,\"handshakes\":%llu,\"handshakes_per_s\":%.1f,"
             "\"hs_p50_us\":%.0f,\"hs_p99_us\":%.0f",
             concurrency, nsources, (unsigned long long)close_errors, (unsigned long long)close_timeouts, (unsigned long long)w_handshakes, win > 0 ? w_handshakes / win : 0.0,
             hist_pct(0.50), hist_pct(0.99));
      break;
    case SC_IDLE: {
      long open_now = 0;
      for (long i = 0; i < nslots; i++)
        if (conns[i].state == CS_OPEN) open_now++;
      printf(",\"sources\":%ld,\"established\":%ld,\"open_at_end\":%ld", nsources, established, open_now);
      break;
    }
  }
  printf("}\n");
  fflush(stdout);
}

int main(int argc, char **argv) {
  static struct option opts[] = {
      {"scenario", 1, 0, 's'},     {"host", 1, 0, 'h'},        {"port", 1, 0, 'p'},
      {"path", 1, 0, 'P'},         {"duration", 1, 0, 'd'},    {"warmup", 1, 0, 'w'},
      {"connections", 1, 0, 'c'},  {"pipeline", 1, 0, 'q'},    {"size", 1, 0, 'b'},
      {"window", 1, 0, 'W'},       {"concurrency", 1, 0, 'C'}, {"sources", 1, 0, 'S'},
      {"warmup-conns", 1, 0, 'u'}, {"timeout", 1, 0, 't'},     {"label", 1, 0, 'l'},
      {"drain", 1, 0, 'D'},        {"rcv-batch", 1, 0, 'R'},   {"ports", 1, 0, 'O'},
      {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 's': sc_name = optarg; break;
      case 'h': host = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'P': path = optarg; break;
      case 'd': duration = atof(optarg); break;
      case 'w': warmup = atof(optarg); break;
      case 'c': nconns = atol(optarg); break;
      case 'q': pipeline_depth = atol(optarg); break;
      case 'b': msg_size = atol(optarg); break;
      case 'W': window_sz = atol(optarg); break;
      case 'C': concurrency = atol(optarg); break;
      case 'S': nsources = atol(optarg); break;
      case 'u': warmup_conns = atol(optarg); break;
      case 't': timeout_s = atof(optarg); break;
      case 'l': label = optarg; break;
      case 'D': drain_s = atof(optarg); break;
      case 'R': rcv_batch = atol(optarg); break;
      case 'O': {
        char *list = optarg, *end;
        nports = 0;
        while (*list && nports < MAX_PORTS) {
          long p = strtol(list, &end, 10);
          if (end == list || p <= 0 || p > 65535) usage();
          ports[nports++] = (int)p;
          list = *end == ',' ? end + 1 : end;
          if (*end && *end != ',') usage();
        }
        if (*list) usage(); /* more than MAX_PORTS */
        port = nports > 0 ? ports[0] : 0;
        break;
      }
      default: usage();
    }
  }
  if (!sc_name || !port) usage();
  if (!strcmp(sc_name, "echo-small")) sc = SC_ECHO_SMALL;
  else if (!strcmp(sc_name, "echo-large")) sc = SC_ECHO_LARGE;
  else if (!strcmp(sc_name, "broadcast")) sc = SC_BROADCAST;
  else if (!strcmp(sc_name, "connect-rate")) sc = SC_CONNECT_RATE;
  else if (!strcmp(sc_name, "idle-memory")) sc = SC_IDLE;
  else usage();
  if (strncmp(host, "127.", 4) != 0) {
    fprintf(stderr, "wsload: only loopback targets (127.0.0.0/8) are allowed\n");
    return 1;
  }
  if (nsources < 0 || nsources > 250) nsources = 16;
  switch (sc) {
    case SC_ECHO_SMALL:
      if (nconns < 0) nconns = 100;
      if (msg_size < 0) msg_size = 32;
      break;
    case SC_ECHO_LARGE:
      if (nconns < 0) nconns = 4;
      if (msg_size < 0) msg_size = 1 << 20;
      break;
    case SC_BROADCAST:
      if (nconns < 0) nconns = 1000;
      if (msg_size < 0) msg_size = 64;
      break;
    case SC_CONNECT_RATE:
      if (nconns < 0) nconns = 10000;
      if (warmup_conns < 0) warmup_conns = 1000;
      break;
    case SC_IDLE:
      if (nconns < 0) nconns = 19000;
      break;
  }
  if ((sc == SC_ECHO_SMALL && (msg_size < 16 || msg_size > 1024)) ||
      (sc == SC_BROADCAST && (msg_size < 8 || msg_size > 1024)) || (sc == SC_ECHO_LARGE && msg_size < 1)) {
    fprintf(stderr, "wsload: bad --size for scenario\n");
    return 1;
  }
  if (pipeline_depth < 1) pipeline_depth = 1;
  if (window_sz < 1) window_sz = 1;
  if (concurrency < 1) concurrency = 1;

  signal(SIGPIPE, SIG_IGN);
  rng ^= (uint64_t)getpid() * 0x2545F4914F6CDD1DULL ^ now_ns();
  t0_ns = now_ns();
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) usage();
  if (nports > 1 && sc != SC_BROADCAST) {
    fprintf(stderr, "wsload: --ports with more than one port is for the broadcast scenario\n");
    return 1;
  }
  for (int i = 0; i < nports; i++) {
    dsts[i] = dst;
    dsts[i].sin_port = htons((uint16_t)ports[i]);
  }
  request_len = (size_t)snprintf(request, sizeof request,
                                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                 path, host, port, WS_KEY);
  hist = calloc(HIST_N, sizeof *hist);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (!hist || ep < 0) die("setup");

  /* Stop-control for idle-memory: any input or EOF on stdin ends the hold. */
  if (sc == SC_IDLE) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) < 0) die("epoll stdin");
  }

  long total_slots = sc == SC_BROADCAST ? nconns + 1 : (sc == SC_CONNECT_RATE ? concurrency : nconns);
  nslots = total_slots;
  conns = calloc((size_t)nslots, sizeof *conns);
  if (!conns) die("oom");
  uint64_t ring_cap = 1;
  while (ring_cap < (uint64_t)pipeline_depth) ring_cap <<= 1;
  ring_mask = ring_cap - 1;
  for (long i = 0; i < nslots; i++) {
    conns[i].fd = -1;
    conns[i].idx = (uint32_t)i;
    if (sc == SC_ECHO_SMALL || sc == SC_ECHO_LARGE) {
      conns[i].ring = calloc(ring_cap, sizeof(uint64_t));
      if (!conns[i].ring) die("oom");
    }
  }
  if (sc == SC_ECHO_LARGE) {
    uint8_t *payload = malloc((size_t)msg_size);
    large_frame = malloc((size_t)msg_size + 14);
    if (!payload || !large_frame) die("oom");
    for (long i = 0; i < msg_size; i++) payload[i] = (uint8_t)(i * 31 + 7);
    conn tmp;
    memset(&tmp, 0, sizeof tmp);
    queue_frame(&tmp, 2, payload, (size_t)msg_size);
    memcpy(large_frame, tmp.ob, tmp.ob_len);
    large_frame_len = tmp.ob_len;
    free(tmp.ob);
    free(payload);
  }

  /* Phase: connect. Traffic scenarios open every connection (bounded concurrency) before any traffic. */
  enum { PH_CONNECT, PH_SETTLE, PH_RUN, PH_DRAIN, PH_HOLD, PH_CR_WARM, PH_CR_MEASURE, PH_DONE } phase;
  long next_open = 0;
  long opened_total = sc == SC_BROADCAST ? nconns + 1 : nconns;
  uint64_t settle_until = 0, warm_end = 0, run_end = 0, drain_end = 0;
  uint64_t deadline = t0_ns + (uint64_t)(timeout_s * 1e9);
  const char *status = "ok";
  if (sc == SC_CONNECT_RATE) {
    phase = PH_CR_WARM;
    cr_target = warmup_conns;
    cr_next();
  } else {
    phase = PH_CONNECT;
  }

  struct epoll_event evs[512];
  for (;;) {
    uint64_t now = now_ns();
    /* Drive the phase machine. */
    if (phase == PH_CONNECT) {
      long pending = next_open - established - (long)conn_failures;
      while (next_open < opened_total && pending < concurrency) {
        /* In broadcast the publisher (last slot) connects only after every subscriber is open. */
        if (sc == SC_BROADCAST && next_open == nconns && established < nconns) break;
        conn *c = &conns[next_open];
        c->role = sc == SC_BROADCAST ? (next_open == nconns ? R_PUB : R_SUB) : R_ECHO;
        start_conn(c);
        next_open++;
        pending++;
      }
      if (conn_failures) {
        status = "connect-failed";
        break;
      }
      if (established == opened_total) {
        if (sc == SC_IDLE) {
          printf("{\"event\":\"ready\",\"connections\":%ld}\n", established);
          fflush(stdout);
          phase = PH_HOLD;
        } else {
          phase = PH_SETTLE;
          settle_until = now + 100000000ull;
        }
      }
    }
    if (phase == PH_SETTLE && now >= settle_until) {
      phase = PH_RUN;
      warm_end = now + (uint64_t)(warmup * 1e9);
      run_end = warm_end + (uint64_t)(duration * 1e9);
      if (sc == SC_BROADCAST) {
        publisher = &conns[nconns];
        designated = &conns[nconns - 1];
        /* Subscribers other than the designated one are woken only once `batch` messages are
           queued (SO_RCVLOWAT): the generator then spends one wake-up and one read per batch
           instead of per message. Reset to 1 byte for the drain. */
        if (rcv_batch > 1)
          for (long i = 0; i < nconns - 1; i++) {
            int lowat = (int)(rcv_batch * (msg_size + 2));
            setsockopt(conns[i].fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
          }
        publishing = 1;
        publish(now);
      } else {
        for (long i = 0; i < nslots; i++) {
          conn *c = &conns[i];
          if (sc == SC_ECHO_SMALL)
            for (long k = 0; k < pipeline_depth; k++) echo_small_send(c, now);
          else {
            c->ring[0] = now;
            c->sent++;
            c->ext = large_frame;
            c->ext_off = 0;
            c->ext_len = large_frame_len;
          }
          flush_out(c);
        }
      }
    }
    if (phase == PH_RUN && !in_window && !window_done && now >= warm_end) {
      getrusage(RUSAGE_SELF, &ru_start);
      win_start_ns = now_ns();
      in_window = 1;
      event_line("measure-start");
    }
    if (phase == PH_RUN && in_window && now >= run_end) {
      win_end_ns = now_ns();
      getrusage(RUSAGE_SELF, &ru_end);
      in_window = 0;
      window_done = 1;
      event_line("measure-end");
      if (sc == SC_BROADCAST) {
        publishing = 0;
        if (rcv_batch > 1)
          for (long i = 0; i < nconns - 1; i++) {
            int lowat = 1;
            if (conns[i].fd >= 0) setsockopt(conns[i].fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
          }
        subs_caught_up = 0;
        for (long i = 0; i < nconns; i++)
          if (conns[i].expect == pub_seq) subs_caught_up++;
        phase = PH_DRAIN;
        drain_end = now + (uint64_t)(drain_s * 1e9);
      } else {
        phase = PH_DONE;
      }
    }
    if (phase == PH_DRAIN && (subs_caught_up >= nconns || now >= drain_end)) {
      if (subs_caught_up < nconns) status = "drain-timeout";
      phase = PH_DONE;
    }
    if (sc == SC_CONNECT_RATE) {
      static uint64_t last_reap;
      if (now - last_reap > 50000000ull) {
        last_reap = now;
        reap_closing(now);
      }
    }
    if (phase == PH_CR_WARM && cr_done >= cr_target && cr_inflight == 0) {
      phase = PH_CR_MEASURE;
      getrusage(RUSAGE_SELF, &ru_start);
      win_start_ns = now_ns();
      event_line("measure-start");
      cr_measuring = 1;
      hist_count = hist_over = hist_max = 0;
      memset(hist, 0, HIST_N * sizeof *hist);
      cr_started = cr_done = 0;
      cr_target = nconns;
      cr_next();
    }
    if (phase == PH_CR_MEASURE && cr_done >= cr_target && cr_inflight == 0) {
      win_end_ns = now_ns();
      getrusage(RUSAGE_SELF, &ru_end);
      event_line("measure-end");
      phase = PH_DONE;
    }
    if (phase == PH_DONE) break;
    if (now >= deadline) {
      status = "timeout";
      if (!win_end_ns) {
        win_end_ns = now_ns();
        getrusage(RUSAGE_SELF, &ru_end);
      }
      break;
    }
    if (sc != SC_CONNECT_RATE && phase != PH_HOLD && closed_unexpected) {
      status = "connection-lost";
      if (!win_end_ns) {
        win_end_ns = now_ns();
        getrusage(RUSAGE_SELF, &ru_end);
      }
      break;
    }

    int tmo = 50;
    uint64_t next = deadline;
    if (phase == PH_SETTLE) next = settle_until;
    else if (phase == PH_RUN) next = in_window ? run_end : warm_end;
    else if (phase == PH_DRAIN) next = drain_end;
    if (next > now) {
      uint64_t ms = (next - now + 999999) / 1000000;
      if (ms < (uint64_t)tmo) tmo = (int)ms;
    } else {
      tmo = 0;
    }
    int n = epoll_wait(ep, evs, 512, tmo);
    n_waits++;
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    int stop_hold = 0;
    for (int i = 0; i < n; i++) {
      uint64_t d = evs[i].data.u64;
      if (d == UINT64_MAX) {
        char tmp[256];
        ssize_t r = read(0, tmp, sizeof tmp);
        (void)r;
        stop_hold = 1;
        epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
        continue;
      }
      conn *c = &conns[(uint32_t)d];
      if (c->gen != (uint32_t)(d >> 32) || c->state == CS_FREE) continue;
      uint32_t e = evs[i].events;
      if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        if (c->state == CS_CONNECTING || (e & EPOLLOUT)) on_writable(c);
        if (c->gen != (uint32_t)(d >> 32)) continue;
      }
      if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        uint64_t t = now_ns();
        on_readable(c, t);
      }
    }
    if (stop_hold && phase == PH_HOLD) {
      win_start_ns = win_end_ns = 0;
      phase = PH_DONE;
      break;
    }
  }
  if (!strcmp(status, "ok") && (mismatches || proto_errors)) status = "bad-data";
  if (sc == SC_IDLE && !win_end_ns) {
    /* No timing window in idle-memory; report CPU over the whole run. */
    ru_start = (struct rusage){0};
    getrusage(RUSAGE_SELF, &ru_end);
  }
  print_result(status);
  for (long i = 0; i < nslots; i++)
    if (conns[i].fd >= 0) close(conns[i].fd);
  return strcmp(status, "ok") == 0 ? 0 : 3;
}
