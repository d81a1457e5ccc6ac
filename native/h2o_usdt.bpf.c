// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * One generic BPF program for every H2O, quicly USDT probe h2o-otel uses. The loader attaches it once per probe
 * with the probe's id as the USDT cookie; the id selects a descriptor (written into .rodata before loading) that
 * says how many arguments to copy, which are strings and how to read them, and how the probe takes part in
 * per-connection sampling. Records go to one ring buffer without waking the reader: user space drains it on a
 * timer, because a wakeup per event triples the cost to the traced process.
 *
 * Record layout and descriptors: h2o_usdt.h. Rebuild with `npm run build:bpf`.
 */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
/* H2O inlines its probes at many sites: raise libbpf's per-object spec limit (default 256). */
#define BPF_USDT_MAX_SPEC_CNT 1024
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>
#include "h2o_usdt.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile struct h2o_usdt_config config = {
    .sample_threshold = 1ull << 32,
    .ringbuf_flags = BPF_RB_NO_WAKEUP,
};
struct h2o_usdt_counters counters = {};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 16 << 20); /* the loader sets the configured size */
} events SEC(".maps");

/* Room for the largest record plus one string cap, so a masked offset can never point outside. */
#define SCRATCH_BYTES 20480
#define OFFSET_MASK 0x3fff

/* An AND the compiler cannot drop: the verifier needs to see every variable offset and size bounded. */
static __always_inline __u64 bounded(__u64 v, const __u64 mask)
{
    asm volatile("%[v] &= %[m]" : [v] "+r"(v) : [m] "i"(mask));
    return v;
}

struct scratch {
    __u8 buf[SCRATCH_BYTES];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} scratch_map SEC(".maps");

/* Header names some span uses (user space fills it before attaching): see header_filter. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct h2o_usdt_header_key);
    __type(value, __u8);
} header_names SEC(".maps");

/* Per-connection sampling decisions; LRU so connections without a close event (HTTP/2) age out. */
#define DECISIONS 65536
struct decision_map {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, DECISIONS);
    __type(key, __u64);
    __type(value, __u8);
};
struct decision_map conn_keep SEC(".maps");
struct decision_map sock_keep SEC(".maps");
struct decision_map quic_keep SEC(".maps");

static __always_inline __u8 decide(void *map, __u64 key)
{
    __u8 *known = bpf_map_lookup_elem(map, &key);
    if (known)
        return *known;
    __u8 keep = bpf_get_prandom_u32() < config.sample_threshold;
    bpf_map_update_elem(map, &key, &keep, BPF_NOEXIST);
    return keep;
}

/* Decided once per connection: every event of a kept connection is kept, every event of a dropped one dropped. */
static __always_inline int sampled_in(struct pt_regs *ctx, __u8 id_kind, __u8 role, __u64 a0)
{
    if (config.sample_threshold > 0xffffffffull)
        return 1;
    __u8 keep = 1;
    if (id_kind == H2O_USDT_ID_CONN) {
        keep = decide(&conn_keep, a0);
    } else if (id_kind == H2O_USDT_ID_QUIC) {
        keep = decide(&quic_keep, a0);
    } else if (id_kind == H2O_USDT_ID_SOCK) {
        /* Sockets never seen in h1_accept (HTTP/2 over TLS, upstream) carry nothing the spans use. */
        __u8 *known = bpf_map_lookup_elem(&sock_keep, &a0);
        keep = known ? *known : 0;
    }
    if (role == H2O_USDT_ROLE_H1_ACCEPT) {
        long sock = 0;
        bpf_usdt_arg(ctx, 1, &sock);
        __u64 key = sock;
        bpf_map_update_elem(&sock_keep, &key, &keep, BPF_ANY);
    } else if (role == H2O_USDT_ROLE_H3_ACCEPT) {
        /* quicly's events came first and decided under the pointer: the conn id follows that decision. */
        long quic = 0;
        bpf_usdt_arg(ctx, 2, &quic);
        __u64 key = quic;
        __u8 *q = bpf_map_lookup_elem(&quic_keep, &key);
        if (q)
            keep = *q;
        else
            bpf_map_update_elem(&quic_keep, &key, &keep, BPF_ANY);
        bpf_map_update_elem(&conn_keep, &a0, &keep, BPF_ANY);
    } else if (role == H2O_USDT_ROLE_CONN_END) {
        bpf_map_delete_elem(&conn_keep, &a0);
    } else if (role == H2O_USDT_ROLE_QUIC_END) {
        bpf_map_delete_elem(&quic_keep, &a0);
    }
    return keep;
}

/*
 * Whether a header record must go to user space: its name is in `header_names` for this direction, or is too long
 * for the key, or cannot be read (user space then counts the failure). A browser sends a dozen headers per request
 * that no span uses; dropping them here spares the copy of their values, the ring and the consumer.
 */
static __always_inline int header_wanted(struct pt_regs *ctx, const volatile struct h2o_usdt_probe_desc *d, __u8 bit)
{
    if (!(config.header_filter & bit))
        return 1;
    long ptr = 0, len = 0;
    __u8 ptr_arg = d->str[0].ptr_arg, len_arg = d->str[0].len_arg;
    if (ptr_arg >= H2O_USDT_MAX_ARGS || len_arg >= H2O_USDT_MAX_ARGS)
        return 1;
    bpf_usdt_arg(ctx, ptr_arg, &ptr);
    bpf_usdt_arg(ctx, len_arg, &len);
    if (!ptr || len <= 0 || len > H2O_USDT_HEADER_KEY)
        return 1;
    struct h2o_usdt_header_key key = {};
    __u32 n = bounded((__u64)len, 2 * H2O_USDT_HEADER_KEY - 1);
    if (n > H2O_USDT_HEADER_KEY)
        n = H2O_USDT_HEADER_KEY;
    if (bpf_probe_read_user(key.name, n, (const void *)ptr) != 0)
        return 1;
    __u8 *used = bpf_map_lookup_elem(&header_names, &key);
    return used && (*used & bit);
}

/* Copy string `k` to `off` in the scratch buffer; returns the bytes copied and sets the record's flags. */
static __always_inline __u32 copy_string(struct scratch *s, struct h2o_usdt_record *r, __u32 off, int k, __u8 kind,
                                         __u8 ptr_arg, __u8 len_arg, __u32 cap)
{
    if (ptr_arg >= H2O_USDT_MAX_ARGS || ptr_arg >= r->nargs)
        return 0;
    const void *src = (const void *)r->args[ptr_arg];
    void *dst = s->buf + bounded(off, OFFSET_MASK);
    if (cap > H2O_USDT_MAX_STRING)
        cap = H2O_USDT_MAX_STRING;
    if (!src) {
        /* NULL is a legitimate "absent" (connect_error's rcode): flagged, not counted as a failure. */
        r->flags |= H2O_USDT_FLAG_READ_FAILED(k);
        return 0;
    }
    if (kind == H2O_USDT_STR_PTRLEN) {
        if (len_arg >= H2O_USDT_MAX_ARGS || len_arg >= r->nargs)
            return 0;
        __u64 want = r->args[len_arg];
        __u32 n = want > cap ? cap : (__u32)want;
        if (want > cap) {
            r->flags |= H2O_USDT_FLAG_TRUNCATED(k);
            __sync_fetch_and_add(&counters.truncated, 1);
        }
        n = bounded(n, 2 * H2O_USDT_MAX_STRING - 1);
        if (n > H2O_USDT_MAX_STRING)
            n = H2O_USDT_MAX_STRING;
        if (bpf_probe_read_user(dst, n, src) != 0) {
            r->flags |= H2O_USDT_FLAG_READ_FAILED(k);
            __sync_fetch_and_add(&counters.read_failures, 1);
            return 0;
        }
        return n;
    }
    if (kind == H2O_USDT_STR_CSTR) {
        long got = bpf_probe_read_user_str(dst, cap + 1, src);
        if (got <= 0) {
            r->flags |= H2O_USDT_FLAG_READ_FAILED(k);
            __sync_fetch_and_add(&counters.read_failures, 1);
            return 0;
        }
        if (got == cap + 1) {
            r->flags |= H2O_USDT_FLAG_TRUNCATED(k);
            __sync_fetch_and_add(&counters.truncated, 1);
        }
        return (__u32)(got - 1) & (2 * H2O_USDT_MAX_STRING - 1);
    }
    if (kind == H2O_USDT_STR_SOCKADDR) {
        if (bpf_probe_read_user(dst, H2O_USDT_SOCKADDR_BYTES, src) != 0) {
            r->flags |= H2O_USDT_FLAG_READ_FAILED(k);
            __sync_fetch_and_add(&counters.read_failures, 1);
            return 0;
        }
        return H2O_USDT_SOCKADDR_BYTES;
    }
    return 0;
}

SEC("usdt")
int h2o_probe(struct pt_regs *ctx)
{
    __u32 probe = (__u32)bpf_usdt_cookie(ctx) & (H2O_USDT_MAX_PROBES - 1);
    const volatile struct h2o_usdt_probe_desc *d = &config.probes[probe];
    __sync_fetch_and_add(&counters.hits[probe], 1);
    if (config.count_only)
        return 0;

    long a0 = 0;
    bpf_usdt_arg(ctx, 0, &a0);
    if (!sampled_in(ctx, d->id_kind, d->role, (__u64)a0)) {
        __sync_fetch_and_add(&counters.sampled_out, 1);
        return 0;
    }

    if (d->role == H2O_USDT_ROLE_REQUEST_HEADER || d->role == H2O_USDT_ROLE_RESPONSE_HEADER) {
        __u8 bit = d->role == H2O_USDT_ROLE_REQUEST_HEADER ? H2O_USDT_FILTER_REQUEST_HEADERS
                                                           : H2O_USDT_FILTER_RESPONSE_HEADERS;
        if (!header_wanted(ctx, d, bit)) {
            __sync_fetch_and_add(&counters.skipped_headers, 1);
            return 0;
        }
    }

    __u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
    if (!s)
        return 0;
    struct h2o_usdt_record *r = (void *)s->buf;
    r->ts_ns = bpf_ktime_get_ns();
    if (config.pidns_ino != 0) {
        struct bpf_pidns_info ns = {};
        if (bpf_get_ns_current_pid_tgid(config.pidns_dev, config.pidns_ino, &ns, sizeof(ns)) == 0) {
            r->pid = ns.tgid;
            r->tid = ns.pid;
        } else {
            __u64 id = bpf_get_current_pid_tgid();
            r->pid = id >> 32;
            r->tid = (__u32)id;
        }
    } else {
        __u64 id = bpf_get_current_pid_tgid();
        r->pid = id >> 32;
        r->tid = (__u32)id;
    }
    r->probe = probe;
    r->flags = 0;
    r->_pad0 = 0;
    r->_pad1 = 0;

    int n = bpf_usdt_arg_cnt(ctx);
    if (n < 0)
        n = 0;
    if (n > d->nargs)
        n = d->nargs;
    if (n > H2O_USDT_MAX_ARGS)
        n = H2O_USDT_MAX_ARGS;
    r->nargs = n;
    for (int i = 0; i < H2O_USDT_MAX_ARGS; i++) {
        if (i >= n)
            break;
        long v = 0;
        bpf_usdt_arg(ctx, i, &v);
        r->args[i] = v;
    }

    __s8 sa = d->stream_arg;
    if (sa >= 0 && sa < n && sa < H2O_USDT_MAX_ARGS) {
        __s64 stream_id = -1;
        const void *stream = (const void *)r->args[sa];
        if (!stream ||
            bpf_probe_read_user(&stream_id, sizeof(stream_id), stream + H2O_USDT_QUICLY_STREAM_ID_OFFSET) != 0) {
            stream_id = -1;
            __sync_fetch_and_add(&counters.read_failures, 1);
        }
        r->args[sa] = stream_id;
    }

    __u32 off = 32 + 8 * (__u32)n;
#pragma unroll
    for (int k = 0; k < H2O_USDT_MAX_STRINGS; k++) {
        __u32 len = 0;
        __u8 kind = d->str[k].kind;
        if (kind != H2O_USDT_STR_NONE)
            len = copy_string(s, r, off, k, kind, d->str[k].ptr_arg, d->str[k].len_arg, d->str[k].cap);
        r->str_len[k] = len;
        off += len;
    }
    r->size = off;

    if (bpf_ringbuf_output(&events, r, bounded(off, OFFSET_MASK), config.ringbuf_flags) != 0)
        __sync_fetch_and_add(&counters.lost, 1);
    else
        __sync_fetch_and_add(&counters.emitted, 1);
    return 0;
}
