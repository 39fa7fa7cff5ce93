/* early: a command's declared outputs packed into the store while it still
 * runs, on the CPU it leaves idle, so that storing a directory of many
 * files after it costs a read of each, not a hash and a write too. */
#ifndef CASHET_EARLY_H
#define CASHET_EARLY_H

#include "exec/fds.h"
#include "store/store.h"
#include "trace/trace.h"

struct early;

/* How long a command runs before its outputs are looked at, unless
 * CASHET_EARLY_PACK_MS says otherwise ("off": never): a small miss never
 * starts the thread. */
#define EARLY_AFTER_MS 100

/* NULL when there is nothing to pack early: no declared output, or off.
 * cwd and outputs must outlive it. */
struct early *early_new(struct store *st, const char *cwd, const struct strvec *outputs);
int64_t early_after_ms(const struct early *e);
/* Starts the packing thread (spawn's `slow` hook: the command has run a
 * while); again, nothing. */
void early_start(void *e);
/* The command exited: the thread packs what is left, every file however
 * recently written, in one last pack, while the caller reads the trace
 * and walks the outputs. ev (n events) is what the command was traced
 * doing, NULL when it was not traced or the trace is incomplete; fds what
 * it inherited: they decide which files packed while it ran need reading
 * again (early.c). */
void early_ended(struct early *e, const struct trace_event *ev, size_t n, const struct fds *fds);
/* Waits for that last pack, then gives each of r's output files the
 * early blob packed from it, if any: the save takes it when the file
 * still holds those bytes. */
void early_apply(struct early *e, struct run_record *r);
/* Stops the thread (a pack being written is finished with what it has),
 * and lets gc run again: after the save. */
void early_free(struct early *e);

#endif
