/* runlog: the last pipeline run's steps (see runlog.h), as text:
 * "cashet-pipeline-run 1", "start MS END_MS", then "step STATE START END NAME". */
#include "pipeline/runlog.h"
#include "util/hash.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void runlog_path(const char *store_dir, const char *file, struct strbuf *out)
{
	struct digest d;
	char hx[DIGEST_HEX];
	digest_of(file, strlen(file), &d);
	digest_hex(&d, hx);
	sb_reset(out);
	sb_addf(out, "%s/pipelines/%s", store_dir, hx);
}

void runlog_add(struct runlog *l, const char *name, const char *state, int64_t start_ms, int64_t end_ms)
{
	l->steps = xrealloc(l->steps, (l->n + 1) * sizeof(*l->steps));
	struct runlog_step *s = &l->steps[l->n++];
	s->name = xstrdup(name);
	snprintf(s->state, sizeof(s->state), "%s", state);
	s->start_ms = start_ms;
	s->end_ms = end_ms;
}

int runlog_write(const char *path, const struct runlog *l)
{
	struct strbuf sb = STRBUF_INIT, dir = STRBUF_INIT;
	int rc;
	sb_addf(&sb, "cashet-pipeline-run 1\nstart %" PRId64 " %" PRId64 "\n", l->start_ms, l->end_ms);
	for (size_t i = 0; i < l->n; i++)
		sb_addf(&sb, "step %s %" PRId64 " %" PRId64 " %s\n", l->steps[i].state, l->steps[i].start_ms,
			l->steps[i].end_ms, l->steps[i].name);
	sb_add(&dir, path, (size_t)(strrchr(path, '/') - path));
	rc = mkdirs(dir.buf, 0777) < 0 ? -1 : write_file_atomic(path, sb.buf, sb.len, 0644);
	sb_release(&sb);
	sb_release(&dir);
	return rc;
}

int runlog_read(const char *path, struct runlog *l)
{
	struct strbuf sb = STRBUF_INIT;
	int rc = -1, lineno = 0;
	memset(l, 0, sizeof(*l));
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		rc = 0;
		goto out;
	}
	if (read_file_sb(path, &sb) < 0)
		goto out;
	char *save = NULL;
	for (char *line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char state[16];
		int64_t a, b;
		int n = 0;
		lineno++;
		if (lineno == 1 && !strcmp(line, "cashet-pipeline-run 1"))
			continue;
		if (lineno == 1 || (sscanf(line, "start %" SCNd64 " %" SCNd64 "%n", &a, &b, &n) == 2 && !line[n])) {
			if (lineno == 1)
				goto bad;
			l->start_ms = a;
			l->end_ms = b;
			continue;
		}
		if (sscanf(line, "step %15s %" SCNd64 " %" SCNd64 " %n", state, &a, &b, &n) < 3 || !n || !line[n])
			goto bad;
		runlog_add(l, line + n, state, a, b);
	}
	rc = 1;
	goto out;
bad:
	err_set("%s:%d: malformed line", path, lineno);
	runlog_free(l);
out:
	sb_release(&sb);
	return rc;
}

void runlog_free(struct runlog *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->steps[i].name);
	free(l->steps);
	memset(l, 0, sizeof(*l));
}
