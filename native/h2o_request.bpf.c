// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * One uprobe at the entry of `void h2o_dispose_request(h2o_req_t *req)`: every finished request on every protocol
 * passes there with its fields final, so one trap gives one record. The program knows no H2O layout: user space
 * writes the field offsets of the traced build (from its debug info) into `config` before load.
 *
 * Record layout and config: h2o_request.h. Rebuild with `npm run build:bpf`.
 */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "h2o_request.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile struct h2o_request_config config = {
    .sample_threshold = 1ull << 32,
};

struct h2o_request_counters counters = {};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 << 20); /* the loader sets the configured size */
} records SEC(".maps");

/* Header names some span uses (user space fills it before attaching when config.header_filter is set). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct h2o_request_header_key);
    __type(value, __u8);
} header_names SEC(".maps");

/* An AND the compiler cannot drop: the verifier needs to see every variable size bounded. */
static __always_inline __u64 bounded(__u64 v, const __u64 mask)
{
    asm volatile("%[v] &= %[m]" : [v] "+r"(v) : [m] "i"(mask));
    return v;
}

static __always_inline void read_at(void *dst, __u32 size, const void *base, __u32 offset)
{
    bpf_probe_read_user(dst, size, (const char *)base + offset);
}

struct h2o_iovec {
    const char *base;
    __u64 len;
};

/* Copy at most `cap` (a power of two) bytes of the iovec at `obj + offset` to `dst`; its true length to `out_len`. */
#define READ_IOVEC(dst, cap, out_len, obj, offset)                                                                 \
    do {                                                                                                           \
        struct h2o_iovec iov_ = {};                                                                                \
        read_at(&iov_, sizeof(iov_), (obj), (offset));                                                             \
        /* No bytes, no length: user space must never decode what a reserved record held before. */            \
        (out_len) = !iov_.base ? 0 : iov_.len > 0xffffffffu ? 0xffffffffu : (__u32)iov_.len;                       \
        __u64 n_ = iov_.len > (cap) ? (cap) : iov_.len;                                                            \
        if (n_ > 0 && iov_.base)                                                                                   \
            bpf_probe_read_user((dst), bounded(n_ - 1, (cap) - 1) + 1, iov_.base);                                 \
    } while (0)

/*
 * Whether the header named by `name` must go to user space: filtering is off, its name is in `header_names`, or
 * is too long for the key, or cannot be read. A browser sends a dozen headers per request that no span uses;
 * dropping them here spares the copy of their values, the ring and the consumer.
 */
static __always_inline bool header_wanted(const struct h2o_iovec *name)
{
    if (!config.header_filter)
        return true;
    if (!name->base || name->len == 0 || name->len > H2O_REQUEST_HEADER_KEY)
        return true;
    struct h2o_request_header_key key = {};
    __u32 n = bounded(name->len - 1, H2O_REQUEST_HEADER_KEY - 1) + 1;
    if (bpf_probe_read_user(key.name, n, name->base) != 0)
        return true;
    __u8 *used = bpf_map_lookup_elem(&header_names, &key);
    return used && (*used & H2O_REQUEST_HEADER_USED);
}

/*
 * One record per wanted request header (among the first H2O_REQUEST_MAX_HEADERS), keyed like the request record
 * that follows.
 */
static __always_inline __u64 send_headers(const void *req, __u64 ktime_ns, __u32 pid)
{
    const char *entries = NULL;
    __u64 count = 0;
    read_at(&entries, sizeof(entries), req, config.req_headers_entries);
    read_at(&count, sizeof(count), req, config.req_headers_size);
    if (!entries)
        return count;
    __u32 stride = config.header_size;
#pragma clang loop unroll(disable)
    for (__u32 i = 0; i < H2O_REQUEST_MAX_HEADERS; i++) {
        if (i >= count)
            break;
        const char *h = entries + (__u64)i * stride;
        const void *name_iov = NULL;
        read_at(&name_iov, sizeof(name_iov), h, config.header_name);
        struct h2o_iovec name = {};
        if (name_iov)
            read_at(&name, sizeof(name), name_iov, 0);
        if (!header_wanted(&name)) {
            __sync_fetch_and_add(&counters.skipped_headers, 1);
            continue;
        }
        struct h2o_request_header_record *r = bpf_ringbuf_reserve(&records, sizeof(*r), 0);
        if (!r) {
            __sync_fetch_and_add(&counters.lost_headers, 1);
            break;
        }
        r->ktime_ns = ktime_ns;
        r->req = (__u64)req;
        r->pid = pid;
        r->index = i;
        r->name_len = 0;
        if (name_iov)
            READ_IOVEC(r->name, H2O_REQUEST_HEADER_NAME_CAP, r->name_len, name_iov, 0);
        READ_IOVEC(r->value, H2O_REQUEST_HEADER_VALUE_CAP, r->value_len, h, config.header_value);
        bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
    }
    return count;
}

static __always_inline __u32 current_pid(void)
{
    if (config.pidns_ino != 0) {
        struct bpf_pidns_info ns = {};
        if (bpf_get_ns_current_pid_tgid(config.pidns_dev, config.pidns_ino, &ns, sizeof(ns)) == 0)
            return ns.tgid;
    }
    return bpf_get_current_pid_tgid() >> 32;
}

/* Sampling is per connection, so a connection's requests are all kept or all left out: a multiplicative hash of
 * its id (ids are sequential) compared with the threshold. */
static __always_inline bool sampled_in(__u64 conn_id)
{
    if (config.sample_threshold > 0xffffffffull)
        return true;
    return ((conn_id * 0x9e3779b97f4a7c15ull) >> 32) < config.sample_threshold;
}

/* The client's address H2O cached on the connection's socket (set once something asked for it). */
static __always_inline void read_peer(struct h2o_request_record *r, const void *conn, __s32 version)
{
    __u32 sock_at = version >= 0x200 ? config.http2_conn_sock : config.http1_conn_sock;
    r->peer_len = 0;
    if (version >= 0x300 || sock_at == H2O_REQUEST_ABSENT || config.socket_peername == H2O_REQUEST_ABSENT ||
        config.peername_len == H2O_REQUEST_ABSENT || config.peername_addr == H2O_REQUEST_ABSENT)
        return;
    const void *sock = NULL, *peername = NULL;
    read_at(&sock, sizeof(sock), conn, sock_at);
    if (!sock)
        return;
    read_at(&peername, sizeof(peername), sock, config.socket_peername);
    if (!peername)
        return;
    __u32 len = 0;
    if (bpf_probe_read_user(&len, sizeof(len), (const char *)peername + config.peername_len) != 0 || len == 0)
        return;
    if (bpf_probe_read_user(r->peer, sizeof(r->peer), (const char *)peername + config.peername_addr) == 0)
        r->peer_len = len > H2O_REQUEST_PEER_CAP ? H2O_REQUEST_PEER_CAP : len;
}

static __always_inline void read_proxy(struct h2o_request_record *r, const void *req)
{
    r->proxy_bytes_written = 0;
    r->proxy_bytes_read = 0;
    __builtin_memset(r->proxy_timings, 0, sizeof(r->proxy_timings));
    if (config.req_proxy_timestamps[0] == H2O_REQUEST_ABSENT)
        return;
    read_at(&r->proxy_timings[0], sizeof(r->proxy_timings[0]), req, config.req_proxy_timestamps[0]);
    /* start_at unset: not a proxied request. */
    if (r->proxy_timings[0].sec == 0)
        return;
#pragma clang loop unroll(full)
    for (int i = 1; i < 5; i++)
        if (config.req_proxy_timestamps[i] != H2O_REQUEST_ABSENT)
            read_at(&r->proxy_timings[i], sizeof(r->proxy_timings[i]), req, config.req_proxy_timestamps[i]);
    if (config.req_proxy_bytes_written != H2O_REQUEST_ABSENT)
        read_at(&r->proxy_bytes_written, sizeof(r->proxy_bytes_written), req, config.req_proxy_bytes_written);
    if (config.req_proxy_bytes_read != H2O_REQUEST_ABSENT)
        read_at(&r->proxy_bytes_read, sizeof(r->proxy_bytes_read), req, config.req_proxy_bytes_read);
}

/* HTTP/2 and HTTP/3 embed the request in their stream struct: the stream's id is a few fields away. */
static __always_inline __s64 read_stream_id(const void *req, __s32 version)
{
    __s64 id = -1;
    if (version >= 0x300) {
        if (config.h3_stream_req == H2O_REQUEST_ABSENT || config.h3_stream_quic == H2O_REQUEST_ABSENT ||
            config.quicly_stream_id == H2O_REQUEST_ABSENT)
            return -1;
        const void *quic = NULL;
        read_at(&quic, sizeof(quic), (const char *)req - config.h3_stream_req, config.h3_stream_quic);
        __s64 v = 0;
        if (quic && bpf_probe_read_user(&v, sizeof(v), (const char *)quic + config.quicly_stream_id) == 0)
            id = v;
    } else if (version >= 0x200) {
        if (config.h2_stream_req == H2O_REQUEST_ABSENT || config.h2_stream_id == H2O_REQUEST_ABSENT)
            return -1;
        __u32 id32 = 0;
        if (bpf_probe_read_user(&id32, sizeof(id32), (const char *)req - config.h2_stream_req + config.h2_stream_id) == 0)
            id = id32;
    }
    return id;
}

static __always_inline __u8 read_persistent(const void *req)
{
    __u32 bit = config.req_http1_is_persistent_bit;
    if (bit == H2O_REQUEST_ABSENT)
        return 0xff;
    __u8 byte = 0;
    if (bpf_probe_read_user(&byte, 1, (const char *)req + (bit >> 3)) != 0)
        return 0xff;
    return (byte >> (bit & 7)) & 1;
}

SEC("uprobe")
int on_dispose_request(struct pt_regs *ctx)
{
    const void *req = (const void *)PT_REGS_PARM1(ctx);
    __sync_fetch_and_add(&counters.hits, 1);
    const void *conn = NULL;
    __u64 conn_id = 0;
    read_at(&conn, sizeof(conn), req, config.req_conn);
    if (conn)
        read_at(&conn_id, sizeof(conn_id), conn, config.conn_id);
    if (!sampled_in(conn_id)) {
        __sync_fetch_and_add(&counters.sampled_out, 1);
        return 0;
    }
    __u64 ktime_ns = bpf_ktime_get_ns();
    __u32 pid = current_pid();
    __u64 header_count = send_headers(req, ktime_ns, pid);
    struct h2o_request_record *r = bpf_ringbuf_reserve(&records, sizeof(*r), 0);
    if (!r) {
        __sync_fetch_and_add(&counters.lost, 1);
        return 0;
    }
    r->ktime_ns = ktime_ns;
    r->pid = pid;
    r->req = (__u64)req;
    r->header_count = header_count;
    r->conn_id = conn_id;
    r->version = 0;
    r->status = 0;
    r->bytes_sent = 0;
    read_at(&r->version, sizeof(r->version), req, config.req_version);
    read_at(&r->status, sizeof(r->status), req, config.req_status);
    read_at(&r->bytes_sent, sizeof(r->bytes_sent), req, config.req_bytes_sent);
    read_at(&r->request_begin_at, sizeof(r->request_begin_at), req, config.req_request_begin_at);
    read_at(&r->response_start_at, sizeof(r->response_start_at), req, config.req_response_start_at);
    read_at(&r->response_end_at, sizeof(r->response_end_at), req, config.req_response_end_at);

    r->connected_at.sec = 0;
    r->connected_at.usec = 0;
    r->peer_len = 0;
    if (conn) {
        read_at(&r->connected_at, sizeof(r->connected_at), conn, config.conn_connected_at);
        read_peer(r, conn, r->version);
    }

    READ_IOVEC(r->method, H2O_REQUEST_METHOD_CAP, r->method_len, req, config.req_method);
    READ_IOVEC(r->authority, H2O_REQUEST_AUTHORITY_CAP, r->authority_len, req, config.req_authority);
    READ_IOVEC(r->path, H2O_REQUEST_PATH_CAP, r->path_len, req, config.req_path);
    const void *scheme = NULL;
    r->scheme_len = 0;
    read_at(&scheme, sizeof(scheme), req, config.req_scheme);
    if (scheme)
        READ_IOVEC(r->scheme, H2O_REQUEST_SCHEME_CAP, r->scheme_len, scheme, config.scheme_name);
    read_proxy(r, req);
    r->http1_persistent = read_persistent(req);
    r->stream_id = read_stream_id(req, r->version);
    __sync_fetch_and_add(&counters.requests, 1);
    /* No wakeup: user space drains the ring on a timer; a wakeup per record would cost the traced process. */
    bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
    return 0;
}
