/* What the tracer (trace.c) and its LD_PRELOAD library (cashet-trace.so,
 * src/preload/trace-preload.c) agree on: the environment variable, the
 * seals that mark the log, and the records in it. */
#ifndef CASHET_TRACE_PRELOAD_H
#define CASHET_TRACE_PRELOAD_H

#include <stdint.h>

/* "FD:INODE:COOKIE": the log's fd and inode (decimal), the run's cookie
 * (hex) */
#define TRACE_PRELOAD_ENV "CASHET_TRACE_LOG"

/* The log's seals (F_GET_SEALS): a file without exactly these is not it. */
#define TRACE_PRELOAD_SEALS (F_SEAL_SHRINK | F_SEAL_SEAL)

#define TRACE_REC_MAGIC 0xca

enum {
	TRACE_REC_OPEN = 1,   /* bits: the open flags */
	TRACE_REC_ACCESS = 2, /* bits: the access, below */
};

/* the bits of enum trace_access (trace.h) a record may carry */
#define TRACE_REC_STAT (1u << 2)
#define TRACE_REC_WRITE (1u << 4)
#define TRACE_REC_REMOVE (1u << 5)

/* A record's header; the path (len bytes, absolute, unterminated) follows. */
struct trace_rec {
	uint16_t len;
	uint8_t kind;  /* TRACE_REC_OPEN, TRACE_REC_ACCESS */
	uint8_t magic; /* TRACE_REC_MAGIC */
	uint32_t bits;
};

#endif
