/* explain: turns a fingerprint mismatch into sentences. Parts are matched by
 * (kind, name): a part present on one side only was added or removed, a
 * part on both sides with another hash changed. */
#include "key/explain.h"
#include "key/canon.h"
#include "key/observed.h"
#include "store/gitmod.h"

#include <stdio.h>
#include <stdlib.h>
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
		{ "exe", "executable" }, { "file", "file argument" },      { "dir", "directory" },
		{ "glob", "pattern" },   { "env-pattern", "env pattern" }, { "output", "declared output" },
		{ "link", "symlink" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++)
		if (!strcmp(map[i][0], kind))
			return map[i][1];
	return kind;
}

static int is_source(const char *kind)
{
	return !strcmp(kind, "script") || !strcmp(kind, "source") || !strcmp(kind, "dep");
}

/* " (lines 3, 12-14)": where the canonical forms differ, in the current
 * file's line numbers. Best effort: without the old copy, nothing. */
static const struct run_file *source_copy(const struct run_record *r, const char *path)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (r->files[i].kind == FILE_SOURCE && !strcmp(r->files[i].path, path))
			return &r->files[i];
	return NULL;
}

static void changed_lines(struct store *st, const struct run_record *old, const struct run_record *cur,
			  const char *name, struct strbuf *out)
{
	struct strbuf path = STRBUF_INIT, was = STRBUF_INIT, now = STRBUF_INIT, cw = STRBUF_INIT, cn = STRBUF_INIT;
	struct canon_lines lw = CANON_LINES_INIT, ln = CANON_LINES_INIT;
	struct diff_hunk *h = NULL;
	size_t nh = 0;
	const struct gitmod *g;
	const struct run_file *f, *fc;
	sb_addf(&path, "sources/%s", name);
	f = source_copy(old, path.buf);
	fc = source_copy(cur, path.buf);
	sb_reset(&path);
	sb_addf(&path, "%s/%s", store_root(st), name);
	if (!f || store_blob_read(st, f, &was) < 0 || !(g = gitmod_get()))
		goto out;
	if (fc ? store_blob_read(st, fc, &now) < 0 : read_file_sb(path.buf, &now) < 0)
		goto out;
	enum canon_lang lang = canon_detect(name, now.buf, now.len);
	canon_source_lines(lang, was.buf ? was.buf : "", was.len, &cw, NULL, &lw);
	canon_source_lines(lang, now.buf ? now.buf : "", now.len, &cn, NULL, &ln);
	if (g->diff_text(cw.buf ? cw.buf : "", cw.len, cn.buf ? cn.buf : "", cn.len, name, 0, &h, &nh, NULL) < 0 || !nh)
		goto out;
	sb_adds(out, nh == 1 && h[0].new_lines <= 1 ? " (line " : " (lines ");
	for (size_t i = 0; i < nh; i++) {
		/* a pure deletion sits after new_start: name the line that follows */
		size_t first = (size_t)(h[i].new_lines ? h[i].new_start : h[i].new_start + 1);
		size_t last = h[i].new_lines ? (size_t)(h[i].new_start + h[i].new_lines - 1) : first;
		if (first < 1)
			first = last = 1;
		uint32_t a = first <= ln.n ? ln.v[first - 1] : (ln.n ? ln.v[ln.n - 1] + 1 : 1);
		uint32_t b = last <= ln.n ? ln.v[last - 1] : a;
		sb_addf(out, i ? ", %u" : "%u", a);
		if (b > a)
			sb_addf(out, "-%u", b);
	}
	sb_addc(out, ')');
out:
	err_clear();
	free(h);
	canon_lines_release(&lw);
	canon_lines_release(&ln);
	sb_release(&path);
	sb_release(&was);
	sb_release(&now);
	sb_release(&cw);
	sb_release(&cn);
}

/* An empty value is shown quoted: `(unset) -> ""`, not `(unset) -> `. */
static const char *shown(const char *value)
{
	return *value ? value : "\"\"";
}

/* How a part is named in a sentence: "fd 5 (data.txt)" for an inherited
 * file, whose path is only its detail (the key names the descriptor). */
static void label(struct strbuf *sb, const struct run_part *p)
{
	sb_addf(sb, "%s %s", noun(p->kind), p->name);
	if (!strcmp(p->kind, "fd") && p->detail)
		sb_addf(sb, " (%s)", p->detail);
}

static void changed(struct store *st, const struct run_record *old, const struct run_record *cur, struct strvec *out,
		    const struct run_part *was, const struct run_part *now)
{
	struct strbuf sb = STRBUF_INIT;
	if (!strcmp(now->kind, "stdin"))
		sb_adds(&sb, "stdin changed");
	else if (!strcmp(now->kind, "dir"))
		sb_addf(&sb, "directory %s: files added or removed", now->name);
	else if (!strcmp(now->kind, "glob") || !strcmp(now->kind, "env-pattern"))
		sb_addf(&sb, "%s %s matches a different set", noun(now->kind), now->name);
	else if ((!strcmp(now->kind, "env") || !strcmp(now->kind, "param") || !strcmp(now->kind, "setting")) &&
		 was->detail && now->detail)
		sb_addf(&sb, "%s %s changed: %s -> %s", now->kind, now->name, shown(was->detail), shown(now->detail));
	else if (is_source(now->kind)) {
		sb_addf(&sb, "%s changed", now->name);
		changed_lines(st, old, cur, now->name, &sb);
	} else {
		label(&sb, now);
		sb_adds(&sb, " changed");
	}
	sv_push_nocopy(out, sb_detach(&sb));
}

size_t explain_part_changes(const struct run_record *old, const struct run_record *cur, struct part_change **out)
{
	size_t n = 0;
	*out = xcalloc(old->nparts + cur->nparts + 1, sizeof(**out));
	for (size_t i = 0; i < cur->nparts; i++) {
		const struct run_part *p = &cur->parts[i], *q = find_part(old, p);
		if (!q || !digest_eq(&p->hash, &q->hash))
			(*out)[n++] = (struct part_change){ q, p };
	}
	for (size_t i = 0; i < old->nparts; i++)
		if (!find_part(cur, &old->parts[i]))
			(*out)[n++] = (struct part_change){ &old->parts[i], NULL };
	return n;
}

void explain_diff_parts(struct store *st, const struct run_record *old, const struct run_record *cur,
			struct strvec *out)
{
	struct strbuf sb = STRBUF_INIT;
	struct part_change *c;
	size_t n = explain_part_changes(old, cur, &c), before = out->n;
	/* One part of a kind removed and one added is one change for the
	 * working directory (its name is the directory) and the executable
	 * (its name is where the command resolves: another PATH). */
	static const char *const paired[] = { "cwd", "exe" };
	for (size_t k = 0; k < sizeof(paired) / sizeof(*paired); k++) {
		size_t added = n, removed = n, nadded = 0, nremoved = 0;
		for (size_t i = 0; i < n; i++) {
			const struct run_part *p = c[i].cur ? c[i].cur : c[i].old;
			if (strcmp(p->kind, paired[k]) || (c[i].old && c[i].cur))
				continue;
			if (c[i].cur)
				added = i, nadded++;
			else
				removed = i, nremoved++;
		}
		if (nadded != 1 || nremoved != 1)
			continue;
		const char *was = c[removed].old->name, *now = c[added].cur->name;
		sb_reset(&sb);
		if (k == 0)
			sb_addf(&sb, "working directory changed: %s -> %s", was, now);
		else if (cur->argv.n && !strchr(cur->argv.v[0], '/') && strchr(was, '/') && strchr(now, '/'))
			sb_addf(&sb, "%s now resolves to %s (was %s)", cur->argv.v[0], now, was);
		else
			continue;
		sv_push(out, sb.buf);
		c[added].cur = c[added].old = NULL;
		c[removed].cur = c[removed].old = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct run_part *p = c[i].cur ? c[i].cur : c[i].old;
		if (!p)
			continue;
		if (c[i].old && c[i].cur) {
			changed(st, old, cur, out, c[i].old, c[i].cur);
			continue;
		}
		sb_reset(&sb);
		label(&sb, p);
		sb_adds(&sb, c[i].cur ? " added" : " removed");
		sv_push(out, sb.buf);
	}
	if (out->n == before) /* same parts, another fingerprint: only a format change can do that */
		sv_push(out, "fingerprint format changed (cashet upgrade)");
	free(c);
	sb_release(&sb);
}

int explain_run(struct store *st, const struct run_record *cur, char *const *env, int cache_failures, int64_t now,
		struct explain *e)
{
	struct run_record hit = { 0 }, last = { 0 };
	int rc = -1;
	memset(e, 0, sizeof(*e));
	struct obs_match m = { .st = st, .env = env, .why = STRBUF_INIT };
	struct store_lookup_opts lo = { .allow_failed = cache_failures, .now = now, .accept = obs_accept, .ctx = &m };
	int h = store_lookup(st, &cur->fp, &lo, &hit);
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
		/* the same arguments elsewhere: say where */
		l = store_latest_of_argv(st, &cur->argv, &last);
		if (l < 0)
			goto out;
		if (l == 0) {
			sv_push(&e->reasons, "never run before (no run of this command line in this directory)");
		} else {
			struct strbuf sb = STRBUF_INIT;
			sb_addf(&sb, "working directory changed: %s -> %s (the command line never ran here)",
				last.cwd ? last.cwd : ".", cur->cwd ? cur->cwd : ".");
			sv_push_nocopy(&e->reasons, sb_detach(&sb));
			memcpy(e->hash, last.hash, sizeof(e->hash));
			e->created_ms = last.created_ms;
		}
		rc = 0;
		goto out;
	}
	memcpy(e->hash, last.hash, sizeof(e->hash));
	e->created_ms = last.created_ms;
	if (digest_eq(&last.fp, &cur->fp)) {
		struct strbuf sb = STRBUF_INIT;
		if (m.why.len)
			sb_add(&sb, m.why.buf, m.why.len); /* the newest replayable run's observed input */
		else if (last.timed_out)
			sb_adds(&sb,
				"the last run timed out (--timeout) and failures are not replayed (--cache-failures)");
		else if (!last.ok)
			sb_addf(&sb, "the last run failed (exit %d) and failures are not replayed (--cache-failures)",
				last.exit_code);
		else
			sb_adds(&sb, "the last run expired (--ttl)");
		sv_push_nocopy(&e->reasons, sb_detach(&sb));
	} else {
		explain_diff_parts(st, &last, cur, &e->reasons);
	}
	rc = 0;
out:
	run_record_free(&hit);
	run_record_free(&last);
	sb_release(&m.why);
	return rc;
}

void explain_free(struct explain *e)
{
	sv_release(&e->reasons);
}

/* Whether r's fingerprint has a part for in already (-i, a script, the
 * executable, -e): its change is said as that part's. */
static int declared(const struct run_record *r, const struct run_input *in)
{
	if (in->kind != INPUT_ENV)
		return obs_part_covers(r, in->path);
	for (size_t i = 0; i < r->nparts; i++)
		if (!strcmp(r->parts[i].kind, "env") && !strcmp(r->parts[i].name, in->path + 1))
			return 1;
	return 0;
}

size_t explain_input_changes(const struct run_record *old, const struct run_record *cur, struct input_change **out)
{
	size_t n = 0, i = 0, k = 0;
	*out = xcalloc(old->ninputs + cur->ninputs + 1, sizeof(**out));
	while (i < old->ninputs || k < cur->ninputs) {
		const struct run_input *a = i < old->ninputs ? &old->inputs[i] : NULL,
				       *b = k < cur->ninputs ? &cur->inputs[k] : NULL;
		int c = !a ? 1 : !b ? -1 : strcmp(a->path, b->path);
		const struct run_input *any = c > 0 ? b : a;
		if (declared(old, any) || declared(cur, any)) {
			i += c <= 0;
			k += c >= 0;
		} else if (c < 0)
			(*out)[n++] = (struct input_change){ a, NULL }, i++;
		else if (c > 0)
			(*out)[n++] = (struct input_change){ NULL, b }, k++;
		else {
			if (a->kind != b->kind || !digest_eq(&a->d, &b->d))
				(*out)[n++] = (struct input_change){ a, b };
			i++, k++;
		}
	}
	return n;
}

/* What the command did with an input of kind, in why's words. */
static const char *input_verb(char kind)
{
	switch (kind) {
	case INPUT_LISTED:
		return "listed";
	case INPUT_ABSENT:
		return "looked for";
	case INPUT_DIR:
		return "looked at";
	case INPUT_LINK:
		return "followed";
	default:
		return "read";
	}
}

void explain_diff_inputs(const struct run_record *old, const struct run_record *cur, size_t max, struct strvec *out)
{
	struct input_change *c;
	struct strbuf sb = STRBUF_INIT;
	size_t n = explain_input_changes(old, cur, &c);
	for (size_t i = 0; i < n && i < max; i++) {
		const struct run_input *in = c[i].cur ? c[i].cur : c[i].old;
		sb_reset(&sb);
		if (in->kind == INPUT_ENV)
			sb_addf(&sb, "env %s", in->path + 1);
		else
			sb_adds(&sb, in->path);
		sb_addf(&sb, ", %s by the command, %s", input_verb(in->kind),
			c[i].old && c[i].cur ? "changed"
			: c[i].cur           ? "added"
					     : "removed");
		sv_push(out, sb.buf);
	}
	if (n > max) {
		sb_reset(&sb);
		sb_addf(&sb, "and %zu more observed input%s", n - max, n - max == 1 ? "" : "s");
		sv_push(out, sb.buf);
	}
	free(c);
	sb_release(&sb);
}
