/* What the tracer (trace.c) and its LD_PRELOAD library (cashet-trace.so,
 * src/preload/trace-preload.c) agree on: the environment variable, the
 * seals that mark the log, and the records in it. */
#ifndef CASHET_TRACE_PRELOAD_H
#define CASHET_TRACE_PRELOAD_H

#include <stdint.h>

/* "FD:INODE:COOKIE": the log's fd and inode (decimal), the run's cookie
 * (hex) */
#define TRACE_PRELOAD_ENV "CASHET_TRACE_LOG"

/* The log's seals (F_GET_SEALS): a file without exactly these is not it.
 * Its size never changes: every process maps it whole. */
#define TRACE_PRELOAD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* The log is a memfd that every traced process maps: a header page, then
 * a ring of records (the file's size less TRACE_LOG_DATA bytes, a
 * multiple of TRACE_REC_ALIGN). A writer reserves a record's bytes by
 * moving tail on (compare and swap, never past head plus the ring's size:
 * a full ring makes the call stop instead), writes the record and then,
 * last, its magic (a release store); the reader takes the records from
 * head while each has its magic, clears the magic of each (the next lap's
 * writer sets it again) and moves head on. A record that would cross the
 * ring's end is preceded by a filler up to it (TRACE_REC_SKIP). Offsets
 * only grow: a record is at offset % ring. */
struct trace_log_head {
	uint64_t tail; /* bytes reserved by writers, ever */
	char apart[56];
	uint64_t head; /* bytes taken by the reader, ever */
	char apart2[56];
	/* set (to 1) by a writer that could not write a record no stop stands
	 * in for (TRACE_REC_ENV): the trace is not whole */
	uint32_t lost;
	char apart3[60];
	/* Moved on whenever a process of the tree may have changed what its
	 * cwd's path is (chdir, fchdir, chroot, an exec, a rename or rmdir of
	 * a directory): by the library after the call, by the serving thread
	 * before a stopped one runs. A cwd the library cached under an older
	 * value is read again (trace-preload.c). */
	uint64_t cwd_gen;
};
#define TRACE_LOG_DATA 4096
/* Its memory stays allocated once written: at most this much a traced
 * run, the room for 200 ms (a read of the log) of a fast command's calls */
#define TRACE_LOG_RING_DEFAULT ((uint64_t)4 << 20)
#define TRACE_REC_ALIGN 8

#define TRACE_REC_MAGIC 0xca
#define TRACE_REC_SKIP 0xcb /* a filler: len bytes follow that hold no path */

enum {
	TRACE_REC_OPEN = 1,   /* bits: the open flags */
	TRACE_REC_ACCESS = 2, /* bits: the access, below */
	TRACE_REC_ENV = 3,    /* getenv: "$NAME" instead of a path; bits 0 */
};

/* the bits of enum trace_access (trace.h) a record may carry */
#define TRACE_REC_STAT (1u << 2)
#define TRACE_REC_WRITE (1u << 4)
#define TRACE_REC_REMOVE (1u << 5)

/* A record's header; the path (len bytes, absolute, unterminated) follows,
 * then padding to TRACE_REC_ALIGN. */
struct trace_rec {
	uint16_t len;
	uint8_t kind;  /* TRACE_REC_OPEN, TRACE_REC_ACCESS, TRACE_REC_ENV */
	uint8_t magic; /* TRACE_REC_MAGIC */
	uint32_t bits;
};

#endif
