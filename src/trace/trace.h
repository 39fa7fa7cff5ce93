/* trace: observes what a command's whole process tree (threads, forks,
 * execs) does with files, unprivileged: a seccomp-bpf filter, installed in
 * the child just before exec, stops only the file-related syscalls and
 * hands each to this process through a user-notification listener
 * (SECCOMP_FILTER_FLAG_NEW_LISTENER); a thread here reads the path from the
 * stopped task, records it, and lets the syscall continue unchanged. Every
 * other syscall runs at full speed. Works without root, CAP_SYS_ADMIN or
 * ptrace permission (it sets no_new_privs, so set-uid programs run without
 * their privilege), inside containers, and for static binaries and raw
 * syscalls (Go).
 *
 * What is recorded is what was asked for, not what the kernel answered
 * (the notification comes before the syscall runs): whether a path existed,
 * what it held and whether the command wrote it are decided afterwards
 * from the flags and the file system (key/observed.c). */
#ifndef CASHET_TRACE_H
#define CASHET_TRACE_H

#include <stddef.h>
#include <sys/types.h>

/* What a process tree did to a path (ORed over every access). */
enum trace_access {
	TRACE_READ = 1 << 0,   /* opened without write access (open, openat, openat2) */
	TRACE_EXEC = 1 << 1,   /* execve/execveat, PATH candidates included */
	TRACE_STAT = 1 << 2,   /* stat/lstat/statx/access/readlink: existence and metadata looked at */
	TRACE_LIST = 1 << 3,   /* a directory read with getdents */
	TRACE_WRITE = 1 << 4,  /* opened for writing, created, truncated, made (mkdir/link/symlink), renamed onto */
	TRACE_REMOVE = 1 << 5, /* unlinked, removed or renamed away */
	TRACE_ENV = 1 << 6,    /* not a path: "$NAME", a variable read with getenv (the preload library) */
};

struct trace_event {
	/* absolute, as the process named it joined to its cwd or dirfd ("."
	 * and "//" folded); "$NAME" for TRACE_ENV */
	const char *path;
	unsigned access; /* enum trace_access: every way the tree used it */
	unsigned first;  /* the way it was used first (a file read before it was written) */
};

struct trace;
struct strvec;

/* Prepares a tracer for one spawn: builds the filter and the channel the
 * child hands its listener over. Call before fork. Returns 0, or -1 with
 * err_msg() when this system cannot trace (no seccomp user notification). */
int trace_new(struct trace **out);
/* The size of the ring the preload library's records go through (see
 * preload.h), for the traces made from now on: a full ring makes calls
 * stop instead. Tests make it small. */
extern size_t trace_log_ring;

/* The environment the traced command gets, appended to out (NULL
 * terminated, as a strvec is): env (NULL: this process's) with
 * cashet-trace.so added to LD_PRELOAD (after whatever it held) and
 * CASHET_TRACE_LOG telling the library where to write. The library records
 * the calls of the libc functions it wraps (open, stat, access, readlink,
 * mkdir, unlink, rename) in-process and lets them run without a stop;
 * everything else still stops (src/preload/trace-preload.c). Without the
 * library (not found, or $CASHET_TRACE_PRELOAD set empty) or with t NULL,
 * env as it is (an enclosing run's CASHET_TRACE_LOG left out). Call before
 * fork; what a run's key hashes is the request's environment, never this
 * one. The library is looked for in $CASHET_TRACE_PRELOAD, next to this
 * binary, then in the install directory. */
void trace_environ(const struct trace *t, char *const *env, struct strvec *out);

/* Before the child is started (fork or vfork): starts the thread that
 * will receive the listener and serve it. Started first so that a vfork()ed
 * child's exec, the first call the filter stops, is served while the
 * parent's own thread waits for that exec. Returns 0, or -1 with err_msg()
 * saying why: run the child untraced then, without trace_child_install.
 * After 0, trace_parent_attach must follow. */
int trace_listen(struct trace *t);

/* In the child (forked, or vforked: it must not write the parent's
 * memory), after its chdir and dup2s, just before exec; only
 * async-signal-safe calls. Installs the filter and sends the listener to
 * the parent. On failure the child goes on untraced (the parent learns
 * why). */
void trace_child_install(struct trace *t);

/* In the parent, once fork returned (vfork: once the child exec'd or
 * exited): waits for the listener's receipt. Returns 0 tracing, or -1
 * with err_msg() saying why the child runs untraced. */
int trace_parent_attach(struct trace *t);

/* What the caller makes of a program the tree starts: wants says from its
 * path alone (as the execve named it) whether its arguments are worth
 * reading; names then adds the environment variables its arguments name
 * (the inline code of `sh -c CODE`, the script of `sh tool.sh`; cwd is the
 * process's, for a relative script), recorded as TRACE_ENV as if read
 * with getenv: a shell expands `$NAME` without calling it. Both run in
 * the serving thread, the call stopped. */
struct trace_exec_hook {
	int (*wants)(const char *path);
	void (*names)(const char *path, const char *cwd, char *const *argv, struct strvec *names);
};
/* Set before the spawn; hook must outlive t. */
void trace_set_exec_hook(struct trace *t, const struct trace_exec_hook *hook);
/* fn is called, on the serving thread, with each path as the tree first
 * opens it for reading or executes it, not having written it (absolute;
 * valid for the call only). It must not block: the tree's stopped calls
 * wait for it. Set before the spawn. */
void trace_set_read_hook(struct trace *t, void (*fn)(void *ctx, const char *path), void *ctx);

/* After the child has been reaped: serves what is still pending, stops
 * recording, and adds the preload library's records. Processes the command
 * left running keep being served (not recorded) until they exit, after
 * this process has exited too: a helper process of their own (double
 * forked, in its own session, no other fd open) takes the listener over,
 * or, if it cannot be started, a thread of this process. */
void trace_finish(struct trace *t);

/* The accesses recorded, one per path, in first-access order; valid until
 * trace_free. */
const struct trace_event *trace_events(const struct trace *t, size_t *n);

/* Non-NULL when the tree did something tracing cannot see (a syscall from
 * another ABI such as 32-bit x86, io_uring): the accesses are incomplete,
 * and this says what happened. */
const char *trace_blind(const struct trace *t);

void trace_free(struct trace *t);

/* 1 if this process can trace (probed once: a child installs the filter),
 * 0 if not (err_msg() says why). */
int trace_available(void);

#endif
