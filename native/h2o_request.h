/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * Shared by native/h2o_request.bpf.c and src/sources/request/request-record.ts (keep them in step): where the
 * program finds H2O's fields (written into .rodata from the binary's debug info before load) and the record it
 * sends per call of h2o_dispose_request.
 */
#ifndef H2O_REQUEST_H
#define H2O_REQUEST_H

#include <linux/types.h>

#define H2O_REQUEST_METHOD_CAP 32
#define H2O_REQUEST_AUTHORITY_CAP 128
#define H2O_REQUEST_PATH_CAP 256
#define H2O_REQUEST_HEADER_NAME_CAP 64
#define H2O_REQUEST_HEADER_VALUE_CAP 256
#define H2O_REQUEST_SCHEME_CAP 8
/* A sockaddr_in6 (28 bytes) fits; a sockaddr_in is shorter. */
#define H2O_REQUEST_PEER_CAP 28
/* Request headers read per request: more are counted in header_count but not sent. */
#define H2O_REQUEST_MAX_HEADERS 64

/* Byte offsets of fields in st_h2o_req_t (req_*), st_h2o_conn_t (conn_*) and st_h2o_header_t (header_*); header_size
 * is sizeof(st_h2o_header_t), the stride of req->headers.entries. */
struct h2o_request_config {
    __u32 req_conn;
    __u32 req_version;
    __u32 req_status;
    __u32 req_bytes_sent;
    __u32 req_request_begin_at;
    __u32 req_response_start_at;
    __u32 req_response_end_at;
    __u32 req_method;
    __u32 req_authority;
    __u32 req_path;
    __u32 conn_id;
    __u32 conn_connected_at;
    __u32 req_headers_entries;
    __u32 req_headers_size;
    __u32 header_name;
    __u32 header_value;
    __u32 header_size;
    __u32 req_scheme;
    __u32 scheme_name;
    /* Optional fields: H2O_REQUEST_ABSENT when this build lacks them (proxy_stats is newer than 2.2.5). */
    __u32 req_proxy_bytes_written;
    __u32 req_proxy_bytes_read;
    /* proxy_stats.timestamps: start_at, request_begin_at, request_end_at, response_start_at, response_end_at */
    __u32 req_proxy_timestamps[5];
    __u32 http1_conn_sock;
    __u32 http2_conn_sock;
    __u32 socket_peername;
    __u32 peername_len;
    __u32 peername_addr;
    /* A one-bit flag: its position in bits from the start of st_h2o_req_t. */
    __u32 req_http1_is_persistent_bit;
    /* The stream a request is embedded in: where the request sits in it, and the stream's id (HTTP/2), or its
     * quicly stream, whose id it holds (HTTP/3). */
    __u32 h2_stream_req;
    __u32 h2_stream_id;
    __u32 h3_stream_req;
    __u32 h3_stream_quic;
    __u32 quicly_stream_id;
    /* Non-zero: send only headers whose name is in the `header_names` map with the request bit (see below). */
    __u32 header_filter;
    /* A connection is kept when a hash of its id is below this (2^32: every one). */
    __u64 sample_threshold;
    /* The tracer's pid namespace (non-zero ino): pids are sent as seen there (a sidecar sharing H2O's namespace). */
    __u64 pidns_dev;
    __u64 pidns_ino;
};

#define H2O_REQUEST_ABSENT 0xffffffffu

/* What the program counts in .bss, read by user space while attached. */
struct h2o_request_counters {
    __u64 hits;
    __u64 requests;
    /* Request records the full ring had no room for. */
    __u64 lost;
    /* Header records the full ring had no room for (their request may still arrive). */
    __u64 lost_headers;
    /* Calls of connections the sampler left out. */
    __u64 sampled_out;
    /* Headers not sent because no span uses their name. */
    __u64 skipped_headers;
};

/* Key of `header_names`, as in the USDT program: the name zero-padded; longer names are always sent (user space
 * decides). The value's bit 1 marks a name some span uses in requests. */
#define H2O_REQUEST_HEADER_KEY 32
#define H2O_REQUEST_HEADER_USED 1u
struct h2o_request_header_key {
    __u8 name[H2O_REQUEST_HEADER_KEY];
};

struct h2o_timeval {
    __s64 sec;
    __s64 usec;
};

/* One per call; string lengths are H2O's, the bytes copied at most the cap. */
struct h2o_request_record {
    __u64 ktime_ns;
    __u32 pid;
    __s32 version;
    __u64 conn_id;
    struct h2o_timeval connected_at;
    struct h2o_timeval request_begin_at;
    struct h2o_timeval response_start_at;
    struct h2o_timeval response_end_at;
    __u64 bytes_sent;
    __s32 status;
    __u32 method_len;
    __u32 authority_len;
    __u32 path_len;
    __u8 method[H2O_REQUEST_METHOD_CAP];
    __u8 authority[H2O_REQUEST_AUTHORITY_CAP];
    __u8 path[H2O_REQUEST_PATH_CAP];
    /* With ktime_ns and pid, the key of this request's header records (sent before it). */
    __u64 req;
    /* H2O's count of request headers, of which at most H2O_REQUEST_MAX_HEADERS were sent. */
    __u64 header_count;
    __u32 scheme_len;
    __u8 scheme[H2O_REQUEST_SCHEME_CAP];
    /* The client's address as H2O cached it (HTTP/1 and HTTP/2 sockets); peer_len 0 when not cached yet. */
    __u32 peer_len;
    __u8 peer[H2O_REQUEST_PEER_CAP];
    /* HTTP/1: whether the connection stays open after this response (1), closes (0), or unknown (0xff). */
    __u8 http1_persistent;
    /* proxy_stats: totals above TLS, and the upstream timings (start, request begin/end, response start/end);
     * all zero when the request was not proxied or the build has no proxy_stats. */
    __u64 proxy_bytes_written;
    __u64 proxy_bytes_read;
    struct h2o_timeval proxy_timings[5];
    /* HTTP/2 and HTTP/3: the request's stream id (H2O's req_id in its probes); -1 when unknown. */
    __s64 stream_id;
};

/* One per request header, sent before its request's record; told apart from it by its size. */
struct h2o_request_header_record {
    __u64 ktime_ns;
    /* At the same offset as in the request record: the poller reads it before knowing which record it has. */
    __u32 pid;
    __u32 name_len;
    __u64 req;
    __u32 value_len;
    __u32 index;
    __u8 name[H2O_REQUEST_HEADER_NAME_CAP];
    __u8 value[H2O_REQUEST_HEADER_VALUE_CAP];
};

#endif
