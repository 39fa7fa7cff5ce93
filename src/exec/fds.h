/* fds: the descriptors above 2 that a command inherits from cashet (`5<file`,
 * `cat <(cmd)`, make's jobserver). cashet opens its own close-on-exec, so
 * the others are its caller's, passed on to the command. A regular file the
 * command can read is part of its key, as stdin is (fp_spec.fds). A pipe,
 * FIFO or socket that the command line names (/dev/fd/N) cannot be hashed
 * without consuming what the command is to read: such a run is never cached.
 * Pipes the command line does not name are left alone: make -j hands its
 * jobserver's pipe to every child, and refusing those would end caching
 * under make. */
#ifndef CASHET_FDS_H
#define CASHET_FDS_H

#include "key/fp.h"

struct fds {
	struct fp_fd *files; /* sorted by descriptor; each path owned */
	size_t nfiles;
	int piped; /* the first named pipe, FIFO or socket, or -1 */
};

/* Lists the descriptors above 2 this process passes to a command it
 * starts, except the nskip in skip (the front end's own: --report-fd).
 * argv is the command's: it decides which pipes are named. Never fails:
 * a descriptor that cannot be examined is one the command cannot use
 * either. Free with fds_release. */
void fds_scan(char *const *argv, const int *skip, size_t nskip, struct fds *out);
void fds_release(struct fds *f);

/* Whether an argument of argv names descriptor fd: /dev/fd/N,
 * /proc/self/fd/N (anywhere in it: --in=/dev/fd/N, a script's text) or a
 * shell's duplication of it (<&N, >&N). */
int fds_named(char *const *argv, int fd);

#endif
