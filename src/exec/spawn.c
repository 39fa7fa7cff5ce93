/* spawn: vfork (or fork)/exec with capture. The child gets its own process group (so a
 * timeout can kill everything it started) and, on a terminal, the
 * foreground, so Ctrl-C reaches it directly and interactive programs work. */
#include "exec/spawn.h"
#include "trace/trace.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/syscall.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

static int sigpipe_fds[2] = { -1, -1 };
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	int e = errno;
	unsigned char c = (unsigned char)sig;
	got_signal = sig;
	if (sigpipe_fds[1] >= 0 && write(sigpipe_fds[1], &c, 1) < 0) {
		/* nothing to do: got_signal is set */
	}
	errno = e;
}

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

void spawn_signals_init(void)
{
	if (sigpipe_fds[0] < 0 && pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
		sigpipe_fds[0] = sigpipe_fds[1] = -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(*forwarded); i++)
		sigaction(forwarded[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int spawn_pending_signal(void)
{
	return got_signal;
}

/* The capture file, made when a stream outgrows SPAWN_MEM_MAX. */
static int open_capture(const char *dir, struct capture *c)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/cap-%ld-XXXXXX", dir, (long)getpid());
	int fd = mkostemp(p.buf, O_CLOEXEC);
	if (fd < 0) {
		sb_release(&p);
		return -1;
	}
	c->path = sb_detach(&p);
	return fd;
}

void spawn_result_free(struct spawn_result *o)
{
	struct capture *caps[] = { &o->out, &o->err, &o->order };
	for (int i = 0; i < 3; i++) {
		if (caps[i]->path) {
			unlink(caps[i]->path);
			free(caps[i]->path);
			caps[i]->path = NULL;
		}
		sb_release(&caps[i]->mem);
	}
	free(o->untraced);
	o->untraced = NULL;
}

struct stream {
	int fd;     /* read end of the child's pipe, -1 at EOF */
	int tee_fd; /* our stdout/stderr, -1 once it failed (EPIPE) */
	int cap_fd; /* -1: not made yet (capdir set: the bytes in cap->mem), not capturing, or no longer */
	const char *capdir;
	struct capture *cap;
	struct hasher h;
};

/* Moves what the stream has to its tee and capture. Returns the bytes
 * captured (0: none, at its end, or not capturing). */
static size_t pump(struct stream *s)
{
	char buf[65536];
	ssize_t n = read(s->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		return 0;
	}
	if (s->tee_fd >= 0 && write_all(s->tee_fd, buf, (size_t)n) < 0)
		s->tee_fd = -1; /* the reader went away; keep capturing */
	if (s->cap_fd < 0 && s->capdir && !s->cap->path && !s->cap->error) {
		if (s->cap->mem.len + (size_t)n <= SPAWN_MEM_MAX) {
			sb_add(&s->cap->mem, buf, (size_t)n);
			goto captured;
		}
		/* outgrown: to a file, with what memory held */
		if ((s->cap_fd = open_capture(s->capdir, s->cap)) < 0 ||
		    write_all(s->cap_fd, s->cap->mem.buf ? s->cap->mem.buf : "", s->cap->mem.len) < 0)
			goto failed;
		sb_release(&s->cap->mem);
	}
	if (s->cap_fd < 0)
		return 0; /* not capturing, or no longer */
	if (write_all(s->cap_fd, buf, (size_t)n) < 0) {
	failed:
		/* A full disk costs the capture, not the command: its output
		 * keeps flowing to the caller until it exits. The space goes
		 * back at once; it may be the command's disk too. */
		s->cap->error = errno;
		if (s->cap_fd >= 0)
			close(s->cap_fd);
		s->cap_fd = -1;
		if (s->cap->path)
			unlink(s->cap->path);
		sb_release(&s->cap->mem);
		return 0;
	}
captured:
	hasher_bytes(&s->h, buf, (size_t)n);
	s->cap->size += (uint64_t)n;
	return (size_t)n;
}

/* The order in which the two streams' bytes arrived (store.h, "streams"):
 * a chunk per switch from one stream to the other. */
struct order {
	struct strbuf text;
	int last;      /* the stream of the chunk being extended, -1 none */
	uint64_t len;  /* its length so far */
	size_t chunks; /* ended */
};

static void order_end_chunk(struct order *o)
{
	if (o->last >= 0 && o->chunks < SPAWN_ORDER_MAX) {
		sb_addf(&o->text, "%c %" PRIu64 "\n", o->last ? 'e' : 'o', o->len);
		o->chunks++;
	}
}

static void order_add(struct order *o, int stream, size_t n)
{
	if (!n)
		return;
	if (stream != o->last) {
		order_end_chunk(o);
		o->last = stream;
		o->len = 0;
	}
	o->len += n;
}

/* The order as a capture, when both streams have bytes (else their
 * order is no information): in memory, or a file past SPAWN_MEM_MAX. */
static int order_save(struct order *o, const char *capdir, struct spawn_result *res)
{
	struct hasher h;
	int rc = 0;
	if (!res->out.size || !res->err.size || res->out.error || res->err.error)
		return 0;
	order_end_chunk(o);
	hasher_init(&h);
	hasher_bytes(&h, o->text.buf, o->text.len);
	hasher_final(&h, &res->order.d);
	hasher_free(&h);
	res->order.size = o->text.len;
	if (o->text.len <= SPAWN_MEM_MAX) {
		res->order.mem = o->text;
		memset(&o->text, 0, sizeof(o->text)); /* moved */
		return 0;
	}
	int fd = open_capture(capdir, &res->order);
	if (fd < 0)
		return err_sys("cannot create a capture file in %s", capdir);
	rc = write_all(fd, o->text.buf, o->text.len);
	close(fd);
	return rc < 0 ? err_sys("cannot write %s", res->order.path) : 0;
}

static void tty_give(pid_t pgid)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTTOU);
	sigprocmask(SIG_BLOCK, &block, &old);
	tcsetpgrp(STDIN_FILENO, pgid);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* A script without #! run as execvp runs it: by /bin/sh. */
static void exec_script(const char *file, char *const *argv, char *const *env)
{
	size_t argc = 0;
	while (argv[argc])
		argc++;
	char *sh[argc + 2];
	sh[0] = (char *)"/bin/sh";
	sh[1] = (char *)file;
	for (size_t i = 1; i <= argc; i++)
		sh[i + 1] = argv[i];
	execve(sh[0], sh, env);
	errno = ENOEXEC;
}

/* Vforked (see start_child), it shares the parent's memory until its
 * exec: it writes its own stack and nothing else (no environ, no malloc). */
static void child(const struct spawn_spec *spec, struct trace *trace, char *const *env, int out_w, int err_w,
		  int status_w, int foreground)
{
	setpgid(0, 0);
	if (foreground)
		tty_give(getpid());
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(*forwarded); i++)
		signal(forwarded[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGXFSZ, SIG_DFL); /* cashet ignores it (main.c); an ignored signal survives exec */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (spec->stdin_fd >= 0 && spec->stdin_fd != STDIN_FILENO)
		dup2(spec->stdin_fd, STDIN_FILENO);
	dup2(out_w, STDOUT_FILENO);
	dup2(err_w, STDERR_FILENO);
	int e = 0;
	if (spec->cwd && chdir(spec->cwd) < 0) {
		e = -errno; /* negative: the directory, not the command */
		goto fail;
	}
	/* last: from here on every file the command touches is observed */
	if (trace)
		trace_child_install(trace);
	if (!env)
		env = environ;
	if (spec->exe) {
		/* the file the key hashed, found by the same PATH search: no
		 * stop of a traced child per PATH entry */
		execve(spec->exe, spec->argv, env);
		if (errno == ENOEXEC)
			exec_script(spec->exe, spec->argv, env);
	} else {
		/* forked: execvp searches the PATH of environ, which must
		 * be the command's own */
		environ = (char **)env;
		execvp(spec->argv[0], spec->argv);
	}
	e = errno;
fail:
	if (write(status_w, &e, sizeof(e)) < 0) {
		/* parent sees EOF and the exit code */
	}
	_exit(e == ENOENT ? 127 : 126);
}

/* vfork() when the key found the file to run: a fork's copy of this
 * process's page tables, and a fault for each of its pages written before
 * or after the child's exec, was a fifth of a small miss on a VM where a
 * fault costs 30 us. Otherwise fork(), for execvp's search of the
 * command's own PATH. Every signal is blocked until the child has reset
 * its handlers: ours must not run in the child on our memory. */
static pid_t start_child(const struct spawn_spec *spec, struct trace *trace, char *const *env, int out_w, int err_w,
			 int status_w, int foreground)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = spec->exe ? vfork() : fork();
	if (pid == 0)
		child(spec, trace, env, out_w, err_w, status_w, foreground);
	int e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return pid;
}

int spawn_command(const struct spawn_spec *spec, struct spawn_result *o)
{
	int out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, st_p[2] = { -1, -1 };
	struct stream s[2];
	struct order order = { STRBUF_INIT, -1, 0, 0 };
	int rc = -1, exec_errno = 0, pidfd = -1, attached = 0;
	struct strvec trace_env = STRVEC_INIT;
	memset(o, 0, sizeof(*o));
	memset(s, 0, sizeof(s));
	s[0].cap_fd = s[1].cap_fd = -1;

	for (int i = 0; spec->capdir && i < 2; i++) {
		s[i].capdir = spec->capdir;
		hasher_init(&s[i].h);
	}
	s[0].cap = &o->out;
	s[1].cap = &o->err;
	if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 || pipe2(st_p, O_CLOEXEC) < 0) {
		err_sys("pipe");
		goto out;
	}
	int foreground = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp() && spec->stdin_fd < 0;
	/* traced: with the tracer's preload library (the key hashed spec->env) */
	char *const *env = spec->env;
	if (spec->trace) {
		trace_environ(spec->trace, spec->env, &trace_env);
		env = trace_env.v;
	}
	struct trace *trace = spec->trace;
	if (trace && trace_listen(trace) < 0) {
		o->untraced = xstrdup(err_msg());
		err_clear();
		trace = NULL;
	}
	int64_t start = now_ms();
	pid_t pid = start_child(spec, trace, env, out_p[1], err_p[1], st_p[1], foreground);
	if (pid < 0) {
		int e = errno;
		if (trace)
			trace_parent_attach(trace); /* no child: its thread reads EOF and ends */
		errno = e;
		err_sys("fork");
		goto out;
	}
	setpgid(pid, pid); /* both sides, so killpg works whoever runs first */
	/* readable when the child exits: no polling for the exit once the
	 * streams are closed (-1 on kernels before 5.3: poll every 10 ms) */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	close(out_p[1]);
	close(err_p[1]);
	close(st_p[1]);
	out_p[1] = err_p[1] = st_p[1] = -1;
	/* the child has exec'd (vfork) or may still be on its way (fork):
	 * either way the listening thread serves its exec */
	if (trace && !(attached = trace_parent_attach(trace) == 0)) {
		o->untraced = xstrdup(err_msg());
		err_clear();
	}
	if (read(st_p[0], &exec_errno, sizeof(exec_errno)) <= 0)
		exec_errno = 0;

	s[0].fd = out_p[0];
	s[1].fd = err_p[0];
	out_p[0] = err_p[0] = -1;
	s[0].tee_fd = spec->out_fd;
	s[1].tee_fd = spec->err_fd;
	int64_t deadline = spec->timeout_ms > 0 ? start + spec->timeout_ms : 0, kill_at = 0, next_tick = start + 1000;
	int64_t later_at[SPAWN_LATER];
	for (int i = 0; i < SPAWN_LATER; i++)
		later_at[i] = spec->later[i].fn ? start + spec->later[i].after_ms : 0;
	int status = 0, reaped = 0;
	while (s[0].fd >= 0 || s[1].fd >= 0 || !reaped) {
		struct pollfd pf[4];
		int n = 0;
		for (int i = 0; i < 2; i++)
			if (s[i].fd >= 0)
				pf[n++] = (struct pollfd){ .fd = s[i].fd, .events = POLLIN };
		if (sigpipe_fds[0] >= 0)
			pf[n++] = (struct pollfd){ .fd = sigpipe_fds[0], .events = POLLIN };
		if (pidfd >= 0 && !reaped)
			pf[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		int64_t now = now_ms(), wait = next_tick - now;
		if (deadline && !o->timed_out && deadline - now < wait)
			wait = deadline - now;
		if (kill_at && kill_at - now < wait)
			wait = kill_at - now;
		for (int i = 0; i < SPAWN_LATER; i++)
			if (later_at[i] && later_at[i] - now < wait)
				wait = later_at[i] - now;
		if (pidfd < 0 && s[0].fd < 0 && s[1].fd < 0 && wait > 10)
			wait = 10; /* streams closed: only waiting for the exit */
		if (wait < 0)
			wait = 0;
		int pr = poll(pf, (nfds_t)n, (int)wait);
		if (pr < 0 && errno != EINTR) {
			err_sys("poll");
			goto out;
		}
		for (int i = 0; pr > 0 && i < n; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (pf[i].fd == sigpipe_fds[0]) {
				unsigned char c;
				while (read(sigpipe_fds[0], &c, 1) == 1) {
					o->interrupted = c;
					killpg(pid, c);
				}
				continue;
			}
			for (int j = 0; j < 2; j++)
				if (s[j].fd == pf[i].fd)
					order_add(&order, j, pump(&s[j]));
		}
		if (spec->cancel && *spec->cancel && !o->interrupted) {
			o->interrupted = SIGTERM;
			killpg(pid, SIGTERM);
		}
		now = now_ms();
		if (deadline && !o->timed_out && now >= deadline) {
			o->timed_out = 1;
			killpg(pid, SIGTERM);
			kill_at = now + (spec->grace_ms > 0 ? spec->grace_ms : 0);
		}
		if (kill_at && now >= kill_at) {
			killpg(pid, SIGKILL);
			kill_at = 0;
		}
		/* advanced without a tick callback too: else, after the first
		 * second, every poll() timed out at once and the loop spun */
		if (now >= next_tick) {
			if (spec->tick)
				spec->tick(spec->tick_ctx);
			next_tick = now + 1000;
		}
		for (int i = 0; i < SPAWN_LATER; i++)
			if (later_at[i] && now >= later_at[i] && !reaped) {
				spec->later[i].fn(spec->later[i].ctx);
				later_at[i] = 0;
			}
		if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
			reaped = 1;
			/* Background children may hold the pipes open; after a timeout or
			 * interrupt, whatever they write is not ours to wait for. */
			if (o->timed_out || o->interrupted)
				killpg(pid, SIGKILL);
		}
	}
	if (foreground)
		tty_give(getpgrp());
	o->duration_ms = now_ms() - start;
	if (WIFSIGNALED(status)) {
		o->signaled = 1;
		o->status = 128 + WTERMSIG(status);
		int sig = WTERMSIG(status);
		/* Ctrl-C on a terminal goes to the child's group, not to us. */
		if (!o->interrupted && foreground && (sig == SIGINT || sig == SIGQUIT))
			o->interrupted = sig;
	} else {
		o->status = WEXITSTATUS(status);
	}
	if (o->timed_out)
		o->status = 124;
	if (exec_errno < 0)
		err_set("cannot enter the working directory %s: %s", spec->cwd, strerror(-exec_errno));
	else if (exec_errno)
		err_set("%s: %s", spec->argv[0], exec_errno == ENOENT ? "command not found" : strerror(exec_errno));
	if (spec->capdir) {
		hasher_final(&s[0].h, &o->out.d);
		hasher_final(&s[1].h, &o->err.d);
		if (order_save(&order, spec->capdir, o) < 0)
			goto out;
	}
	rc = exec_errno ? 1 : 0;
out:
	if (attached)
		trace_finish(spec->trace);
	for (int i = 0; i < 2; i++) {
		if (s[i].fd >= 0)
			close(s[i].fd);
		if (s[i].cap_fd >= 0)
			close(s[i].cap_fd);
		hasher_free(&s[i].h);
	}
	int fds[] = { out_p[0], out_p[1], err_p[0], err_p[1], st_p[0], st_p[1], pidfd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(*fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	sv_release(&trace_env);
	sb_release(&order.text);
	if (rc < 0)
		spawn_result_free(o);
	return rc;
}
