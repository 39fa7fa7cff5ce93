/* claim: waiting for, and taking over, claims on fingerprints. */
#include "exec/claim.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot. Together
 * with the pid it names a process uniquely, so a reused pid is not mistaken
 * for the claim's owner. */
static int64_t proc_start(int64_t pid)
{
	char path[64];
	struct strbuf sb = STRBUF_INIT;
	int64_t start = 0;
	snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
	if (read_file_sb(path, &sb) == 0) {
		char *p = strrchr(sb.buf, ')');
		for (int field = 2; p && field < 22; field++)
			p = strchr(p + 1, ' ');
		if (p)
			start = strtoll(p + 1, NULL, 10);
	}
	err_clear();
	sb_release(&sb);
	return start;
}

void claim_self(struct claim_owner *me)
{
	memset(me, 0, sizeof(*me));
	me->pid = getpid();
	if (gethostname(me->host, sizeof(me->host) - 1) < 0)
		snprintf(me->host, sizeof(me->host), "localhost");
	me->start = proc_start(me->pid);
	me->heartbeat = now_ms();
}

int claim_stale(const struct claim_owner *o)
{
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	if (!strcmp(host, o->host)) {
		if (kill((pid_t)o->pid, 0) < 0 && errno == ESRCH)
			return 1;
		if (o->start && proc_start(o->pid) != o->start)
			return 1;
		return 0;
	}
	return now_ms() - o->heartbeat > CLAIM_TTL_MS;
}

static void nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int claim_acquire(struct store *st, const struct digest *fp, const struct claim_owner *me, int (*cancelled)(void))
{
	struct claim_owner owner;
	int delay = 2;
	int rc = store_claim(st, fp, me, claim_stale, &owner);
	if (rc <= 0)
		return rc;
	/* whoever holds it may be waiting for a claim of a run this process
	 * keeps in a batch (two pipeline workers): publish those first */
	if (store_batch_flush(st) < 0)
		return -1;
	for (;;) {
		nap(delay);
		if (cancelled && cancelled())
			return 2;
		if (delay < 50)
			delay *= 2;
		int held = store_claim_get(st, fp, &owner);
		if (held < 0)
			return -1;
		if (!held)
			return 1;
		if (claim_stale(&owner)) {
			rc = store_claim(st, fp, me, claim_stale, &owner);
			if (rc <= 0)
				return rc;
		}
	}
}

int claim_busy(struct store *st, const struct digest *fp)
{
	struct claim_owner o;
	return store_claim_get(st, fp, &o) == 1 && !claim_stale(&o);
}
