/* feed: a command's standard input (see feed.h). The pump is a thread, not
 * a process: it must hand its digest back, and a thread left blocked on a
 * silent pipe (`tail -f` after the command quit) ends with cashet, as a
 * shell pipeline's writer would on its next write. */
#include "exec/feed.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct feed_pump {
	pthread_t thread;
	pthread_mutex_t lock;
	int spool, src, out; /* read the spool from its start, then src; write out */
	struct hasher h;
	struct digest d;
	int done;      /* the thread has finished its work (under lock) */
	int complete;  /* src ended and every byte reached out */
	int abandoned; /* the caller stopped waiting: the thread frees this */
};

static void pump_free(struct feed_pump *p)
{
	if (p->spool >= 0)
		close(p->spool);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Copies from to p->out, hashing. 1 at the end of from, 0 when out is
 * closed (the command quit reading), -1 on a read error. */
static int pump_copy(struct feed_pump *p, int from)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(from, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? 1 : -1;
		if (write_all(p->out, buf, (size_t)n) < 0)
			return 0;
		hasher_bytes(&p->h, buf, (size_t)n);
	}
}

static void *pump_main(void *arg)
{
	struct feed_pump *p = arg;
	sigset_t set;
	/* a write to a command that quit reading fails with EPIPE here
	 * instead of killing cashet */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int complete = lseek(p->spool, 0, SEEK_SET) == 0 && pump_copy(p, p->spool) == 1 && pump_copy(p, p->src) == 1;
	if (complete)
		hasher_final(&p->h, &p->d);
	hasher_free(&p->h);
	pthread_mutex_lock(&p->lock);
	p->complete = complete;
	p->done = 1;
	int abandoned = p->abandoned;
	pthread_mutex_unlock(&p->lock);
	/* only now the command sees its end of input: a command that read
	 * to the end finds the pump done when it exits */
	close(p->out);
	if (abandoned)
		pump_free(p);
	return NULL;
}

/* A temp file for the spool: in the store, else (a read-only store) in $TMPDIR. */
static int spool_file(struct store *st)
{
	const char *tmpdir = getenv("TMPDIR");
	int fd = open(store_tmpdir(st), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		fd = open(tmpdir && *tmpdir ? tmpdir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys("cannot spool stdin in %s", store_tmpdir(st));
	return fd;
}

/* Reads f->src into the spool until it ends (1), limit bytes are in the
 * spool or the deadline (ms, 0: none) passes (0), or an error (-1). */
static int spool_until(struct feed *f, uint64_t limit, int64_t deadline)
{
	char buf[65536];
	struct stat sb;
	if (fstat(f->spool, &sb) < 0)
		return err_sys("cannot spool stdin");
	uint64_t have = (uint64_t)sb.st_size;
	while (have < limit) {
		if (deadline) {
			int64_t left = deadline - now_ms();
			struct pollfd pf = { .fd = f->src, .events = POLLIN };
			int pr = left > 0 ? poll(&pf, 1, (int)left) : 0;
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr == 0)
				return 0;
		}
		size_t want = limit - have < sizeof(buf) ? (size_t)(limit - have) : sizeof(buf);
		ssize_t n = read(f->src, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys("cannot read stdin");
		if (n == 0)
			return 1;
		if (write_all(f->spool, buf, (size_t)n) < 0)
			return err_sys("cannot spool stdin");
		have += (uint64_t)n;
	}
	return 0;
}

static void now_hashed(struct feed *f)
{
	lseek(f->spool, 0, SEEK_SET);
	f->mode = FEED_HASHED;
	f->hashed = f->child = f->spool;
}

int feed_pass(int fd, struct feed *f)
{
	*f = (struct feed){ .mode = FEED_NONE, .hashed = -1, .child = -1, .spool = -1, .src = -1 };
	if (fd < 0) {
		f->child = f->spool = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return f->child < 0 ? err_sys("/dev/null") : 0;
	}
	f->child = fd == STDIN_FILENO ? -1 : fd;
	return 0;
}

int feed_open(struct store *st, int fd, struct feed *f)
{
	struct stat sb;
	/* a terminal, /dev/null, other devices: nothing to hash */
	if (fd < 0 || fstat(fd, &sb) < 0 || isatty(fd) ||
	    (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode) && !S_ISSOCK(sb.st_mode)))
		return feed_pass(fd, f);
	*f = (struct feed){ .mode = FEED_NONE, .hashed = -1, .child = -1, .spool = -1, .src = -1 };
	if (S_ISREG(sb.st_mode)) {
		f->mode = FEED_HASHED;
		f->hashed = f->child = fd;
		return 0;
	}
	f->src = fd;
	if ((f->spool = spool_file(st)) < 0)
		return -1;
	int ended = spool_until(f, FEED_LOOKAHEAD_BYTES, now_ms() + FEED_LOOKAHEAD_MS);
	if (ended < 0)
		return -1;
	if (ended)
		now_hashed(f);
	else
		f->mode = FEED_STREAM;
	return 0;
}

int feed_spool_rest(struct store *st, struct feed *f, uint64_t limit)
{
	int ended = spool_until(f, limit, 0);
	if (ended == 1)
		now_hashed(f);
	return ended;
}

int feed_start(struct feed *f)
{
	int fds[2];
	struct feed_pump *p = xcalloc(1, sizeof(*p));
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(p);
		return err_sys("cannot create a pipe for stdin");
	}
	pthread_mutex_init(&p->lock, NULL);
	hasher_init(&p->h);
	p->spool = f->spool;
	p->src = f->src;
	p->out = fds[1];
	if (pthread_create(&p->thread, NULL, pump_main, p) != 0) {
		close(fds[0]);
		close(fds[1]);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return err_set("cannot start the stdin pump");
	}
	f->spool = -1; /* the pump's now: it may outlive the feed */
	f->child = fds[0];
	f->pump = p;
	return 0;
}

int feed_finish(struct feed *f, struct digest *d)
{
	struct feed_pump *p = f->pump;
	if (!p)
		return 0;
	f->pump = NULL;
	/* the read end first: a pump blocked writing to a command that quit
	 * gets EPIPE and ends */
	if (f->child >= 0)
		close(f->child);
	f->child = -1;
	pthread_mutex_lock(&p->lock);
	int done = p->done;
	p->abandoned = !done;
	pthread_mutex_unlock(&p->lock);
	if (!done) {
		/* still reading a pipe that has not ended: its input was never
		 * seen whole; the thread ends with its pipe or with cashet */
		pthread_detach(p->thread);
		return 0;
	}
	pthread_join(p->thread, NULL);
	int complete = p->complete;
	if (complete)
		*d = p->d;
	pump_free(p);
	return complete;
}

void feed_close(struct feed *f)
{
	struct digest unused;
	feed_finish(f, &unused);
	if (f->spool >= 0)
		close(f->spool);
	f->spool = -1;
}
