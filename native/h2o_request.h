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

/* Byte offsets of fields in st_h2o_req_t (req_*) and st_h2o_conn_t (conn_*). */
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
};

#endif
