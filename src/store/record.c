/* record: a run's description and its text form, the "meta" file of every
 * run's git tree. The meta text is the source of truth the index is rebuilt
 * from, so it holds every field the index has. */
#include "store/gitmod.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_VERSION 1

void run_record_free(struct run_record *r)
{
	free(r->name);
	sv_release(&r->argv);
	free(r->cwd);
	sv_release(&r->tags);
	sv_release(&r->metrics);
	for (size_t i = 0; i < r->nparts; i++) {
		free(r->parts[i].kind);
		free(r->parts[i].name);
		free(r->parts[i].detail);
	}
	free(r->parts);
	for (size_t i = 0; i < r->nfiles; i++) {
		free(r->files[i].path);
		free(r->files[i].src);
		sb_release(&r->files[i].held);
		free(r->files[i].data);
	}
	free(r->files);
	for (size_t i = 0; i < r->ninputs; i++)
		free(r->inputs[i].path);
	free(r->inputs);
	memset(r, 0, sizeof(*r));
}

struct run_input *run_add_input(struct run_record *r, char kind, const char *path)
{
	if ((r->ninputs & (r->ninputs - 1)) == 0) /* 0, 1, 2, 4, ...: grow to the next power of two */
		r->inputs = xrealloc(r->inputs, (r->ninputs ? r->ninputs * 2 : 1) * sizeof(*r->inputs));
	struct run_input *in = &r->inputs[r->ninputs++];
	memset(in, 0, sizeof(*in));
	in->kind = kind;
	in->path = xstrdup(path);
	return in;
}

const char *run_input_kind_name(char kind)
{
	switch (kind) {
	case INPUT_FILE:
		return "read";
	case INPUT_SOURCE:
		return "source";
	case INPUT_SOURCE_DOCS:
		return "source+docs";
	case INPUT_ABSENT:
		return "absent";
	case INPUT_LISTED:
		return "listed";
	case INPUT_DIR:
		return "dir";
	case INPUT_ENV:
		return "env";
	case INPUT_LINK:
		return "link";
	}
	return "?";
}

const char *run_observed_name(int observed)
{
	static const char *const names[] = { "none", "traced", "blind", "broken" };
	return observed >= 0 && observed <= OBSERVED_BROKEN ? names[observed] : "?";
}

/* Index form: a version byte, the observed state, then per input: kind,
 * digest, size, mtime, ctime, inode (native byte order: the index is this
 * machine's), a 2-byte path length and the path. */
#define INPUTS_VERSION 1
#define INPUT_FIXED ((size_t)(1 + DIGEST_LEN + 8 * 4 + 2))

static void encode_header(const struct run_record *r, struct strbuf *out)
{
	sb_addc(out, INPUTS_VERSION);
	sb_addc(out, (char)r->observed);
}

void run_inputs_encode(const struct run_record *r, struct strbuf *shared, struct strbuf *own)
{
	/* each record written in place: a rebuild encodes every run's list
	 * (often a hundred inputs), where a call per field cost a fifth of
	 * fsck's indexing thread */
	sb_grow(shared, 2 + r->ninputs * (INPUT_FIXED + 48));
	encode_header(r, shared);
	encode_header(r, own);
	for (size_t i = 0; i < r->ninputs; i++) {
		const struct run_input *in = &r->inputs[i];
		struct strbuf *out = in->path[0] == '/' ? shared : own;
		uint16_t len = (uint16_t)strlen(in->path);
		sb_grow(out, INPUT_FIXED + len);
		char *p = out->buf + out->len;
		*p++ = in->kind;
		memcpy(p, in->d.b, DIGEST_LEN);
		p += DIGEST_LEN;
		memcpy(p, &in->size, 8);
		memcpy(p + 8, &in->mtime_ns, 8);
		memcpy(p + 16, &in->ctime_ns, 8);
		memcpy(p + 24, &in->ino, 8);
		memcpy(p + 32, &len, 2);
		memcpy(p + 34, in->path, len);
		out->len += INPUT_FIXED + len;
		out->buf[out->len] = '\0';
	}
}

/* One part's entries appended to r's inputs. */
static int decode_part(const unsigned char *p, size_t len, struct run_record *r)
{
	const unsigned char *end = p + len;
	if (len < 2 || p[0] != INPUTS_VERSION)
		return err_setc(E_CORRUPT, "index: observed inputs in an unknown format");
	r->observed = p[1];
	for (p += 2; p < end;) {
		uint16_t n;
		if ((size_t)(end - p) < INPUT_FIXED)
			return err_setc(E_CORRUPT, "index: observed inputs truncated");
		memcpy(&n, p + INPUT_FIXED - 2, 2);
		if ((size_t)(end - p) < INPUT_FIXED + n)
			return err_setc(E_CORRUPT, "index: observed inputs truncated");
		char *path = xstrndup((const char *)p + INPUT_FIXED, n);
		struct run_input *in = run_add_input(r, (char)p[0], "");
		free(in->path);
		in->path = path;
		memcpy(in->d.b, p + 1, DIGEST_LEN);
		memcpy(&in->size, p + 1 + DIGEST_LEN, 8);
		memcpy(&in->mtime_ns, p + 9 + DIGEST_LEN, 8);
		memcpy(&in->ctime_ns, p + 17 + DIGEST_LEN, 8);
		memcpy(&in->ino, p + 25 + DIGEST_LEN, 8);
		p += INPUT_FIXED + n;
	}
	return 0;
}

int run_inputs_decode(const void *shared, size_t slen, const void *own, size_t olen, struct run_record *r)
{
	if (decode_part(shared, slen, r) < 0)
		return -1;
	size_t n0 = r->ninputs;
	int observed = r->observed;
	if (decode_part(own, olen, r) < 0)
		return -1;
	if (r->observed != observed)
		return err_setc(E_CORRUPT, "index: observed inputs' two parts disagree");
	/* each part is in path order: merged, the list is again (lookups
	 * search it) */
	if (!n0 || n0 == r->ninputs || strcmp(r->inputs[n0 - 1].path, r->inputs[n0].path) < 0)
		return 0;
	struct run_input *m = xmalloc(r->ninputs * sizeof(*m));
	for (size_t i = 0, j = n0, k = 0; k < r->ninputs; k++)
		m[k] = j == r->ninputs || (i < n0 && strcmp(r->inputs[i].path, r->inputs[j].path) < 0) ? r->inputs[i++]
												       : r->inputs[j++];
	memcpy(r->inputs, m, r->ninputs * sizeof(*m));
	free(m);
	return 0;
}

void run_truncate_parts(struct run_record *r, size_t n)
{
	while (r->nparts > n) {
		struct run_part *p = &r->parts[--r->nparts];
		free(p->kind);
		free(p->name);
		free(p->detail);
	}
}

struct run_part *run_add_part(struct run_record *r, const char *kind, const char *name, const struct digest *h)
{
	r->parts = xrealloc(r->parts, (r->nparts + 1) * sizeof(*r->parts));
	struct run_part *p = &r->parts[r->nparts++];
	p->kind = xstrdup(kind);
	p->name = xstrdup(name);
	p->hash = *h;
	p->detail = NULL;
	return p;
}

struct run_file *run_add_file(struct run_record *r, int kind, const char *path)
{
	if ((r->nfiles & (r->nfiles - 1)) == 0) /* 0, 1, 2, 4, ...: grow to the next power of two */
		r->files = xrealloc(r->files, (r->nfiles ? r->nfiles * 2 : 1) * sizeof(*r->files));
	struct run_file *f = &r->files[r->nfiles++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->path = xstrdup(path);
	f->mode = 0100644;
	f->perm = -1;
	return f;
}

static int needs_quote(const char *s)
{
	if (!*s)
		return 1;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *s))
			return 1;
	return 0;
}

char *run_cmdline(const struct run_record *r)
{
	return run_argv_cmdline(&r->argv);
}

char *run_argv_cmdline(const struct strvec *argv)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < argv->n; i++) {
		const char *a = argv->v[i];
		if (i)
			sb_addc(&sb, ' ');
		if (!needs_quote(a)) {
			sb_adds(&sb, a);
			continue;
		}
		sb_addc(&sb, '\'');
		for (; *a; a++) {
			if (*a == '\'')
				sb_adds(&sb, "'\\''");
			else
				sb_addc(&sb, *a);
		}
		sb_addc(&sb, '\'');
	}
	return sb_detach(&sb);
}

void run_argv_digest(const struct strvec *argv, struct digest *d)
{
	struct hasher h;
	hasher_init(&h);
	hasher_u64(&h, argv->n);
	for (size_t i = 0; i < argv->n; i++)
		hasher_str(&h, argv->v[i]);
	hasher_final(&h, d);
}

struct run_part *run_add_argv_part(struct run_record *r)
{
	struct digest d;
	run_argv_digest(&r->argv, &d);
	char *cmd = run_cmdline(r);
	struct run_part *p = run_add_part(r, "argv", cmd, &d);
	free(cmd);
	return p;
}

/* Escapes so a value is one line: backslash, control bytes and DEL as \xHH. */
static void esc(struct strbuf *out, const char *s)
{
	for (;;) {
		/* the bytes kept as they are, at once: a run's meta names
		 * each of its files (20,000 of them for some) */
		size_t n = 0;
		while ((unsigned char)s[n] >= 0x20 && s[n] != '\\' && s[n] != 0x7f)
			n++;
		sb_add(out, s, n);
		s += n;
		unsigned char c = (unsigned char)*s++;
		if (!c)
			return;
		if (c == '\\')
			sb_adds(out, "\\\\");
		else
			sb_addf(out, "\\x%02x", c);
	}
}

static char *unesc(const char *s, size_t len)
{
	struct strbuf out = STRBUF_INIT;
	sb_grow(&out, len);
	for (size_t i = 0; i < len; i++) {
		/* the plain stretch up to the next backslash, at once: fsck and
		 * reindex decode every run's meta */
		const char *bs = memchr(s + i, '\\', len - i);
		size_t plain = bs ? (size_t)(bs - (s + i)) : len - i;
		if (plain) {
			sb_add(&out, s + i, plain);
			i += plain - 1;
			continue;
		}
		if (s[i] == '\\' && i + 1 < len && s[i + 1] == '\\') {
			sb_addc(&out, '\\');
			i++;
		} else if (s[i] == '\\' && i + 3 < len && s[i + 1] == 'x') {
			char hx[3] = { s[i + 2], s[i + 3], 0 };
			sb_addc(&out, (char)strtol(hx, NULL, 16));
			i += 3;
		} else {
			sb_addc(&out, s[i]);
		}
	}
	return sb_detach(&out);
}

void meta_encode(const struct run_record *r, struct strbuf *out)
{
	char hx[DIGEST_HEX];
	sb_addf(out, META_MAGIC "%d\n", META_VERSION);
	digest_hex(&r->fp, hx);
	sb_addf(out, "fingerprint %s\n", hx);
	digest_hex(&r->line, hx);
	sb_addf(out, "line %s\n", hx);
	if (r->name) {
		sb_adds(out, "name ");
		esc(out, r->name);
		sb_addc(out, '\n');
	}
	sb_adds(out, "cwd ");
	esc(out, r->cwd ? r->cwd : ".");
	sb_addc(out, '\n');
	for (size_t i = 0; i < r->argv.n; i++) {
		sb_adds(out, "arg ");
		esc(out, r->argv.v[i]);
		sb_addc(out, '\n');
	}
	sb_addf(out, "status %s\nexit %d\n", r->ok ? "ok" : "failed", r->exit_code);
	if (r->timed_out)
		sb_adds(out, "timed-out 1\n");
	sb_addf(out, "created %" PRId64 "\nduration %" PRId64 "\n", r->created_ms, r->duration_ms);
	if (r->expires_ms)
		sb_addf(out, "expires %" PRId64 "\n", r->expires_ms);
	for (size_t i = 0; i < r->tags.n; i++) {
		sb_adds(out, "tag ");
		esc(out, r->tags.v[i]);
		sb_addc(out, '\n');
	}
	for (size_t i = 0; i < r->metrics.n; i++) {
		sb_adds(out, "metric ");
		esc(out, r->metrics.v[i]);
		sb_addc(out, '\n');
	}
	for (size_t i = 0; i < r->nparts; i++) {
		digest_hex(&r->parts[i].hash, hx);
		/* the kind is escaped too: decoding unescapes the whole line */
		sb_adds(out, "part ");
		esc(out, r->parts[i].kind);
		sb_addf(out, " %s ", hx);
		esc(out, r->parts[i].name);
		sb_addc(out, '\n');
		if (r->parts[i].detail) {
			sb_adds(out, "detail ");
			esc(out, r->parts[i].detail);
			sb_addc(out, '\n');
		}
	}
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		if (f->kind == FILE_DIR) {
			sb_addf(out, "dir %03o ", (unsigned)(f->perm >= 0 ? f->perm : 0755));
			esc(out, f->path);
			sb_addc(out, '\n');
			continue;
		}
		/* "file %d %s %" PRIu64 " ", without vsnprintf, as inputs below */
		digest_hex(&f->xxh, hx);
		sb_adds(out, "file ");
		sb_add_i64(out, f->kind);
		sb_addc(out, ' ');
		sb_add(out, hx, DIGEST_HEX - 1);
		sb_addc(out, ' ');
		sb_add_u64(out, f->size);
		sb_addc(out, ' ');
		esc(out, f->path);
		sb_addc(out, '\n');
		/* a line of its own, which older versions skip */
		if (f->perm >= 0) {
			char perm[] = "perm 000\n";
			for (int k = 0; k < 3; k++)
				perm[5 + k] = (char)('0' + (f->perm >> (6 - 3 * k) & 7));
			sb_add(out, perm, sizeof(perm) - 1);
		}
	}
	if (r->observed)
		sb_addf(out, "observed %s\n", r->observed == OBSERVED_TRACED ? "traced" : "blind");
	for (size_t i = 0; i < r->ninputs; i++) {
		const struct run_input *in = &r->inputs[i];
		/* "input %c %s %" PRId64 " %" PRId64 " %" PRId64 " %" PRIu64 " " */
		digest_hex(&in->d, hx);
		sb_adds(out, "input ");
		sb_addc(out, in->kind);
		sb_addc(out, ' ');
		sb_add(out, hx, DIGEST_HEX - 1);
		const int64_t nums[] = { in->size, in->mtime_ns, in->ctime_ns };
		for (size_t k = 0; k < 3; k++) {
			sb_addc(out, ' ');
			sb_add_i64(out, nums[k]);
		}
		sb_addc(out, ' ');
		sb_add_u64(out, in->ino);
		sb_addc(out, ' ');
		esc(out, in->path);
		sb_addc(out, '\n');
	}
}

/* Splits "word rest" at the first space. */
static int field(const char *line, size_t len, const char **rest, size_t *restlen)
{
	const char *sp = memchr(line, ' ', len);
	if (!sp)
		return -1;
	*rest = sp + 1;
	*restlen = len - (size_t)(sp + 1 - line);
	return 0;
}

/* A meta value's fields as sscanf's "%s %d ... %n" read them, without
 * sscanf, which was a fifth of fsck on traced runs (their meta lists
 * dozens of inputs). Each field must end at a blank; a bad one sets bad. */
/* isspace() of the C locale, without a call for each byte. */
static int blank(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

struct scan {
	const char *p;
	int bad;
};

static const char *scan_word(struct scan *s, size_t *len)
{
	const char *w = s->p;
	while (blank((unsigned char)*w))
		w++;
	const char *e = w;
	while (*e && !blank((unsigned char)*e))
		e++;
	*len = (size_t)(e - w);
	s->bad |= *len == 0;
	s->p = e;
	return w;
}

/* A decimal field (a sign only when is_signed), as strtoll reads it but
 * without its locale and errno: a million of them in a fsck. */
static int64_t scan_int(struct scan *s, int is_signed)
{
	const char *p = s->p;
	while (blank((unsigned char)*p))
		p++;
	int neg = 0;
	if (*p == '+' || (*p == '-' && is_signed))
		neg = *p++ == '-';
	const char *digits = p;
	uint64_t v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		s->bad |= v > (UINT64_MAX - d) / 10;
		v = v * 10 + d;
	}
	s->bad |= p == digits || (*p && !blank((unsigned char)*p)) ||
		  (is_signed && v > (uint64_t)INT64_MAX + (uint64_t)neg);
	s->p = p;
	return neg ? (int64_t)(0 - v) : (int64_t)v;
}

static int nibble(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20; /* as digest_parse, either case */
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void scan_digest(struct scan *s, struct digest *d)
{
	size_t len;
	const unsigned char *w = (const unsigned char *)scan_word(s, &len);
	if (len != 2 * DIGEST_LEN) {
		s->bad = 1;
		return;
	}
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		int hi = nibble(w[2 * i]), lo = nibble(w[2 * i + 1]);
		s->bad |= hi < 0 || lo < 0;
		d->b[i] = (uint8_t)((hi & 15) << 4 | (lo & 15));
	}
}

/* What follows the fields, from its first non-blank. */
static const char *scan_rest(struct scan *s)
{
	while (blank((unsigned char)*s->p))
		s->p++;
	return s->p;
}

int meta_decode(const char *text, struct run_record *r)
{
	const char *p = text;
	int version = 0, lineno = 0;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		const char *v;
		size_t vlen;
		lineno++;
		if (field(p, len, &v, &vlen) < 0)
			return err_set("meta line %d: malformed", lineno);
		size_t klen = (size_t)(v - 1 - p);
		char *val = unesc(v, vlen);
#define KEY(k) (klen == sizeof(k) - 1 && !memcmp(p, k, klen))
		if (KEY("cashet-run")) {
			version = atoi(val);
		} else if (KEY("fingerprint")) {
			digest_parse(val, &r->fp);
		} else if (KEY("line")) {
			digest_parse(val, &r->line);
		} else if (KEY("name")) {
			free(r->name);
			r->name = val;
			val = NULL;
		} else if (KEY("cwd")) {
			free(r->cwd);
			r->cwd = val;
			val = NULL;
		} else if (KEY("arg")) {
			sv_push_nocopy(&r->argv, val);
			val = NULL;
		} else if (KEY("status")) {
			r->ok = !strcmp(val, "ok");
		} else if (KEY("timed-out")) {
			r->timed_out = atoi(val) != 0;
		} else if (KEY("exit")) {
			r->exit_code = atoi(val);
		} else if (KEY("created")) {
			r->created_ms = strtoll(val, NULL, 10);
		} else if (KEY("duration")) {
			r->duration_ms = strtoll(val, NULL, 10);
		} else if (KEY("expires")) {
			r->expires_ms = strtoll(val, NULL, 10);
		} else if (KEY("tag")) {
			sv_push_nocopy(&r->tags, val);
			val = NULL;
		} else if (KEY("metric") && strchr(val, '=')) {
			sv_push_nocopy(&r->metrics, val);
			val = NULL;
		} else if (KEY("part")) {
			struct scan sc = { val, 0 };
			struct digest d;
			size_t kindlen;
			const char *kind = scan_word(&sc, &kindlen);
			char *k = xstrndup(kind, kindlen);
			scan_digest(&sc, &d);
			if (!sc.bad && kindlen < 32)
				run_add_part(r, k, scan_rest(&sc), &d);
			free(k);
			if (sc.bad || kindlen >= 32) {
				free(val);
				return err_set("meta line %d: malformed part", lineno);
			}
		} else if (KEY("detail") && r->nparts) {
			free(r->parts[r->nparts - 1].detail);
			r->parts[r->nparts - 1].detail = val;
			val = NULL;
		} else if (KEY("file")) {
			struct scan sc = { val, 0 };
			struct digest d;
			int64_t kind = scan_int(&sc, 1);
			scan_digest(&sc, &d);
			uint64_t size = (uint64_t)scan_int(&sc, 0);
			/* a directory comes as a "dir" line, never as a file */
			if (sc.bad || kind < 0 || kind > INT32_MAX || kind == FILE_DIR) {
				free(val);
				return err_set("meta line %d: malformed file", lineno);
			}
			struct run_file *f = run_add_file(r, (int)kind, scan_rest(&sc));
			f->xxh = d;
			f->size = size;
		} else if (KEY("dir")) {
			unsigned perm;
			int n = 0;
			if (sscanf(val, "%o %n", &perm, &n) < 1 || !n || !val[n]) {
				free(val);
				return err_set("meta line %d: malformed dir", lineno);
			}
			struct run_file *f = run_add_file(r, FILE_DIR, val + n);
			f->mode = 040000;
			f->perm = (int)(perm & 0777);
		} else if (KEY("perm") && r->nfiles) {
			r->files[r->nfiles - 1].perm = (int)(strtoul(val, NULL, 8) & 0777);
		} else if (KEY("observed")) {
			r->observed = !strcmp(val, "traced") ? OBSERVED_TRACED : OBSERVED_BLIND;
		} else if (KEY("input")) {
			struct scan sc = { val + (*val ? 1 : 0), !*val };
			struct digest d;
			scan_digest(&sc, &d);
			int64_t size = scan_int(&sc, 1), mtime = scan_int(&sc, 1), ctime = scan_int(&sc, 1);
			uint64_t ino = (uint64_t)scan_int(&sc, 0);
			if (sc.bad) {
				free(val);
				return err_set("meta line %d: malformed input", lineno);
			}
			struct run_input *in = run_add_input(r, *val, scan_rest(&sc));
			in->d = d;
			in->size = size;
			in->mtime_ns = mtime;
			in->ctime_ns = ctime;
			in->ino = ino;
		}
		/* Unknown keys are skipped: newer versions may add fields. */
#undef KEY
		free(val);
		p += len + (nl ? 1 : 0);
	}
	if (version < 1)
		return err_set("not a cashet run (no 'cashet-run' header)");
	return 0;
}
