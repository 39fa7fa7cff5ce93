/* feed: a command's standard input, which is part of its key when it is a
 * file or a pipe. A file is hashed where it is. A pipe is read ahead into
 * a spool; when it ends within the look-ahead, the spool is hashed and
 * given to the command, as a file would be. A pipe still flowing after it
 * (`yes`, `tail -f`, a large or slow producer) is either spooled to its end
 * (up to a limit) or streamed to the command as it comes, each byte hashed
 * on the way: the command starts at once, and its run is stored after it,
 * under the key its whole input gives, only if that input ended. */
#ifndef CASHET_FEED_H
#define CASHET_FEED_H

#include "store/store.h"
#include "util/hash.h"

/* How long and how much of a pipe is read before deciding (FEED_STREAM). */
#define FEED_LOOKAHEAD_MS 250
#define FEED_LOOKAHEAD_BYTES (1u << 20)
/* `config stdin-limit`'s default: the most of a pipe spooled to its end. */
#define FEED_DEFAULT_LIMIT (64ull << 20)

enum feed_mode {
	FEED_NONE,   /* a terminal, /dev/null, a device: passed through, not part of the key */
	FEED_HASHED, /* all of it known before the command starts: hashed fd */
	FEED_STREAM, /* a pipe still flowing after the look-ahead */
};

struct feed_pump;

struct feed {
	enum feed_mode mode;
	int hashed; /* FEED_HASHED: what the key hashes, from offset 0 */
	int child;  /* what the command gets; -1: inherit (a terminal keeps its foreground handling) */
	int spool;  /* the temp file holding what was read (owned), or -1 */
	int src;    /* FEED_STREAM: the pipe the rest comes from */
	struct feed_pump *pump;
};

/* Opens fd (-1: /dev/null) as the command's stdin. Returns 0 or -1. */
int feed_open(struct store *st, int fd, struct feed *f);
/* fd (-1: /dev/null) as the command's stdin, as it is: nothing read,
 * nothing hashed (FEED_NONE; a run without a store). Returns 0 or -1. */
int feed_pass(int fd, struct feed *f);
/* FEED_STREAM only: spools the rest of the pipe, up to limit bytes in all.
 * Returns 1 when it ended (now FEED_HASHED), 0 when it is longer (still
 * FEED_STREAM, everything read so far kept for the command), -1 error. */
int feed_spool_rest(struct store *st, struct feed *f, uint64_t limit);
/* FEED_STREAM: starts copying what was read, then the rest of the pipe, to
 * the command (f->child: a pipe's read end), hashing it. Returns 0 or -1. */
int feed_start(struct feed *f);
/* After the command: 1 with *d (the whole input's digest, as digest_fd
 * would give) if the input ended and all of it went to the command, 0 if
 * not (the command stopped reading first: `head -1`), so its result
 * depends on an input never seen whole. */
int feed_finish(struct feed *f, struct digest *d);
void feed_close(struct feed *f);

#endif
