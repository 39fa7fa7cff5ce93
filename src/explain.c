/* explain: turns a fingerprint mismatch into sentences. Parts are matched by
 * (kind, name): a part present on one side only was added or removed, a
 * part on both sides with another hash changed. */
#include "explain.h"

#include <stdio.h>
#include <string.h>

static const struct run_part *find_part(const struct run_record *r, const struct run_part *p)
{
	for (size_t i = 0; i < r->nparts; i++)
		if (!strcmp(r->parts[i].kind, p->kind) && !strcmp(r->parts[i].name, p->name))
			return &r->parts[i];
	return NULL;
}

static const char *noun(const char *kind)
{
	static const char *const map[][2] = {
		{ "exe", "executable" }, { "file", "file argument" }, { "dir", "directory" },
		{ "glob", "pattern" }, { "env-pattern", "env pattern" }, { "output", "declared output" },
		{ "link", "symlink" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++)
		if (!strcmp(map[i][0], kind))
			return map[i][1];
	return kind;
}

static void changed(struct strvec *out, const struct run_part *was, const struct run_part *now)
{
	struct strbuf sb = STRBUF_INIT;
	if (!strcmp(now->kind, "stdin"))
		sb_adds(&sb, "stdin changed");
	else if (!strcmp(now->kind, "dir"))
		sb_addf(&sb, "directory %s: files added or removed", now->name);
	else if (!strcmp(now->kind, "glob") || !strcmp(now->kind, "env-pattern"))
		sb_addf(&sb, "%s %s matches a different set", noun(now->kind), now->name);
	else if (!strcmp(now->kind, "env") && was->detail && now->detail)
		sb_addf(&sb, "env %s changed: %s -> %s", now->name, was->detail, now->detail);
	else
		sb_addf(&sb, "%s %s changed", noun(now->kind), now->name);
	sv_push_nocopy(out, sb_detach(&sb));
}

static void diff_parts(const struct run_record *old, const struct run_record *cur, struct strvec *out)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < cur->nparts; i++) {
		const struct run_part *p = &cur->parts[i], *q = find_part(old, p);
		if (!q) {
			sb_reset(&sb);
			sb_addf(&sb, "%s %s added", noun(p->kind), p->name);
			sv_push(out, sb.buf);
		} else if (!digest_eq(&p->hash, &q->hash)) {
			changed(out, q, p);
		}
	}
	for (size_t i = 0; i < old->nparts; i++) {
		const struct run_part *q = &old->parts[i];
		if (!find_part(cur, q)) {
			sb_reset(&sb);
			sb_addf(&sb, "%s %s removed", noun(q->kind), q->name);
			sv_push(out, sb.buf);
		}
	}
	if (!out->n) /* same parts, another fingerprint: only a format change can do that */
		sv_push(out, "fingerprint format changed (cashet upgrade)");
	sb_release(&sb);
}

int explain_run(struct store *st, const struct run_record *cur, int cache_failures, int64_t now, struct explain *e)
{
	struct run_record hit = { 0 }, last = { 0 };
	int rc = -1;
	memset(e, 0, sizeof(*e));
	int h = store_lookup(st, &cur->fp, cache_failures, 0, now, &hit);
	if (h < 0)
		goto out;
	if (h == 1) {
		e->hit = 1;
		memcpy(e->hash, hit.hash, sizeof(e->hash));
		e->created_ms = hit.created_ms;
		rc = 0;
		goto out;
	}
	int l = store_latest_of_line(st, &cur->line, &last);
	if (l < 0)
		goto out;
	if (l == 0) {
		sv_push(&e->reasons, "never run before (no run of this command line in this directory)");
		rc = 0;
		goto out;
	}
	memcpy(e->hash, last.hash, sizeof(e->hash));
	e->created_ms = last.created_ms;
	if (digest_eq(&last.fp, &cur->fp)) {
		struct strbuf sb = STRBUF_INIT;
		if (!last.ok)
			sb_addf(&sb, "the last run failed (exit %d) and failures are not replayed (--cache-failures)",
				last.exit_code);
		else
			sb_adds(&sb, "the last run expired (--ttl)");
		sv_push_nocopy(&e->reasons, sb_detach(&sb));
	} else {
		diff_parts(&last, cur, &e->reasons);
	}
	rc = 0;
out:
	run_record_free(&hit);
	run_record_free(&last);
	return rc;
}

void explain_free(struct explain *e)
{
	sv_release(&e->reasons);
}
