/*
 * The one definition shared by the BPF program (native/h2o_usdt.bpf.c) and the TypeScript decoder
 * (src/events/usdt-records.ts). A test compiles this header with gcc and checks every offset below against the
 * TypeScript constants, so the two cannot drift.
 *
 * Record: one per probe hit, written to the ring buffer `events` with its exact size (not padded to a maximum):
 *
 *   offset  size  field
 *   0       8     ts_ns        bpf_ktime_get_ns(): CLOCK_MONOTONIC, converted to epoch time in user space
 *   8       4     pid          process id as seen from the tracer's PID namespace (the target's pid otherwise)
 *   12      4     tid          thread id, same namespace rule
 *   16      2     probe        probe id: the index of the probe in the catalogue (the USDT attach cookie)
 *   18      2     size         bytes in this record: 32 + 8 * nargs + sum(str_len)
 *   20      1     nargs        USDT arguments captured (at most 12)
 *   21      1     flags        bit i (0..2): string i was cut at its cap; bit 4+i: reading string i failed
 *   22      2     (zero)
 *   24      6     str_len[3]   bytes of string i copied after the arguments
 *   30      2     (zero)
 *   32      8*n   args[n]      the USDT arguments as 64-bit values (signed ones sign-extended); a quicly stream
 *                              pointer is replaced by the stream's id
 *   ...           strings      string 0, 1, 2 back to back, not NUL-terminated
 *
 * Strings are header names and values (pointer + length, not NUL-terminated in H2O), C strings (uuid, dcid,
 * error text) and struct sockaddr (copied as 28 raw bytes). The true length of a (pointer, length) string stays
 * in its length argument, so truncation is visible.
 */
#ifndef H2O_USDT_H
#define H2O_USDT_H

#define H2O_USDT_MAX_ARGS 12
#define H2O_USDT_MAX_STRINGS 3
/* Largest string copied; the per-probe cap (probe_desc) is at most this. */
#define H2O_USDT_MAX_STRING 4096
#define H2O_USDT_MAX_PROBES 64
#define H2O_USDT_SOCKADDR_BYTES 28

#define H2O_USDT_FLAG_TRUNCATED(i) (1u << (i))
#define H2O_USDT_FLAG_READ_FAILED(i) (1u << (4 + (i)))

struct h2o_usdt_record {
    __u64 ts_ns;
    __u32 pid;
    __u32 tid;
    __u16 probe;
    __u16 size;
    __u8 nargs;
    __u8 flags;
    __u16 _pad0;
    __u16 str_len[H2O_USDT_MAX_STRINGS];
    __u16 _pad1;
    __u64 args[H2O_USDT_MAX_ARGS];
};

/* How a probe's string argument is read. */
enum h2o_usdt_str_kind {
    H2O_USDT_STR_NONE = 0,
    /* pointer in arg `ptr_arg`, length in arg `len_arg` (H2O header names and values) */
    H2O_USDT_STR_PTRLEN = 1,
    /* NUL-terminated C string in arg `ptr_arg`; NULL gives the read-failed flag with length 0 */
    H2O_USDT_STR_CSTR = 2,
    /* struct sockaddr * in arg `ptr_arg`: 28 raw bytes (enough for sockaddr_in6) */
    H2O_USDT_STR_SOCKADDR = 3,
};

/* Which id decides per-connection sampling for a probe, and what the probe does to the sampling state. */
enum h2o_usdt_id_kind {
    H2O_USDT_ID_NONE = 0,    /* no connection: kept unless sampling is on */
    H2O_USDT_ID_CONN = 1,    /* arg 0 is an H2O conn id */
    H2O_USDT_ID_SOCK = 2,    /* arg 0 is a struct st_h2o_socket_t * */
    H2O_USDT_ID_QUIC = 3,    /* arg 0 is a struct st_quicly_conn_t * */
};

enum h2o_usdt_role {
    H2O_USDT_ROLE_NONE = 0,
    H2O_USDT_ROLE_H1_ACCEPT = 1,   /* (conn_id, sock, ...): the socket inherits the connection's decision */
    H2O_USDT_ROLE_H3_ACCEPT = 2,   /* (conn_id, conn, quic, ...): the connection inherits the QUIC decision */
    H2O_USDT_ROLE_CONN_END = 3,    /* h1_close, h3s_destroy: forget the conn id */
    H2O_USDT_ROLE_QUIC_END = 4,    /* quicly:free: forget the pointer (quicly reuses it) */
    H2O_USDT_ROLE_REQUEST_HEADER = 5,  /* (conn_id, req_id, name, name_len, value, value_len): see header_filter */
    H2O_USDT_ROLE_RESPONSE_HEADER = 6,
};

/* header_filter bits: the records of these header probes are sent only for names in the `header_names` map. */
#define H2O_USDT_FILTER_REQUEST_HEADERS 1u
#define H2O_USDT_FILTER_RESPONSE_HEADERS 2u

/* Key of `header_names`: the name zero-padded; longer names are always sent (user space decides). The value has
 * the H2O_USDT_FILTER_* bits of the directions in which the name is used. */
#define H2O_USDT_HEADER_KEY 32
struct h2o_usdt_header_key {
    __u8 name[H2O_USDT_HEADER_KEY];
};

struct h2o_usdt_str_desc {
    __u8 kind;    /* enum h2o_usdt_str_kind */
    __u8 ptr_arg;
    __u8 len_arg;
    __u8 _pad;
    __u16 cap;    /* at most H2O_USDT_MAX_STRING */
    __u16 _pad2;
};

/* Per probe id, written by the loader into .rodata before the program is loaded. */
struct h2o_usdt_probe_desc {
    __u8 nargs;
    __u8 id_kind;      /* enum h2o_usdt_id_kind */
    __u8 role;         /* enum h2o_usdt_role */
    __s8 stream_arg;   /* arg holding a struct st_quicly_stream_t *, or -1 */
    __u32 _pad;
    struct h2o_usdt_str_desc str[H2O_USDT_MAX_STRINGS];
};

/* .rodata: the only read-only global of the program, so it sits at offset 0; written by the loader before load. */
struct h2o_usdt_config {
    /* Keep a connection when bpf_get_prandom_u32() < sample_threshold; above 2^32 - 1 everything is kept. */
    __u64 sample_threshold;
    /* The tracer's PID namespace (st_dev, st_ino of /proc/self/ns/pid), so records carry the pids and tids
     * the user sees; 0 = global ids. */
    __u64 pidns_dev;
    __u64 pidns_ino;
    /* bpf_ringbuf_output flags: BPF_RB_NO_WAKEUP, as the reader polls on a timer. */
    __u64 ringbuf_flags;
    /* Non-zero: count the hit and return (`--usdt-count-only`, the benchmark's bare-uprobe baseline). */
    __u64 count_only;
    /* H2O_USDT_FILTER_* bits: header records of names no span uses are counted (skipped_headers), not sent. */
    __u64 header_filter;
    struct h2o_usdt_probe_desc probes[H2O_USDT_MAX_PROBES];
};

/* .bss: the only writable global, at offset 0; user space reads it through libbpf's mmap of the map. */
struct h2o_usdt_counters {
    __u64 emitted;       /* records written to the ring */
    __u64 lost;          /* records the full ring refused */
    __u64 read_failures; /* strings or stream ids that could not be read from H2O's memory */
    __u64 truncated;     /* strings cut at their cap */
    __u64 sampled_out;   /* hits dropped by per-connection sampling */
    __u64 skipped_headers; /* header hits of names no span uses (header_filter), not sent */
    __u64 _reserved[2];
    __u64 hits[H2O_USDT_MAX_PROBES]; /* probe hits, per probe id */
};

/* Offset of stream_id in quicly's struct st_quicly_stream_t (after `quicly_conn_t *conn`). */
#define H2O_USDT_QUICLY_STREAM_ID_OFFSET 8

#endif
