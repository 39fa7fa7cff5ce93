/* script: interpreter command lines and local dependencies.
 * Only files inside the project (the store's root) are followed: installed
 * packages are represented by the interpreter's own identity (the "exe"
 * part hashes its binary, hence its version). Unparseable sources are
 * hashed raw, never skipped. */
#include "key/script.h"
#include "key/canon.h"
#include "key/fp.h"
#include "util/fsrec.h"

#include <ctype.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum family { FAM_NONE, FAM_PY, FAM_SH, FAM_NODE, FAM_PERL, FAM_RUBY, FAM_R };

/* Stat-cache kinds (renumbered when what they hold changes: 5-8 from when
 * the deps gained the environment variables a source names, "$NAME"; 9-11
 * from when the language of what runs a file counts, the scanners read
 * more forms and docstrings are kept). A file's entry
 * depends on its runner (the language of the interpreter or the sourcing
 * script, see canon_detect_run): KIND_RUNNER apart for each. */
#define KIND_CANON 9    /* canonical digest + deps */
#define KIND_RAWDEPS 10 /* raw digest + deps (--raw-sources) */
#define KIND_CLOSURE 11 /* a whole dependency tree: see closure_load() */
#define KIND_RUNNER 16

struct ctx {
	struct store *st;
	struct run_record *r;
	int raw;
	const char *cwd;
	char *const *env;
	struct strvec seen;    /* absolute paths already added */
	struct strvec pyroots; /* where absolute Python imports are looked up */
	struct strvec probes;  /* "<state><path>" for every path resolution looked at */
	struct strbuf files;   /* the closure being recorded: "F<path>\0<sig>\0" */
	int quiet;             /* every file and directory recorded is old enough to cache */
	int follow;            /* follow imports and sourced files */
};

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static enum family family_of(const char *exe)
{
	const char *b = base_name(exe);
	if (!strncmp(b, "python", 6) || !strncmp(b, "pypy", 4))
		return FAM_PY;
	static const char *const shells[] = { "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", NULL };
	for (const char *const *s = shells; *s; s++)
		if (!strcmp(b, *s))
			return FAM_SH;
	if (!strcmp(b, "node") || !strcmp(b, "nodejs"))
		return FAM_NODE;
	if (!strncmp(b, "perl", 4))
		return FAM_PERL;
	if (!strncmp(b, "ruby", 4))
		return FAM_RUBY;
	if (!strcmp(b, "Rscript"))
		return FAM_R;
	return FAM_NONE;
}

/* Does this single-dash cluster contain an option that makes the next
 * words inline code (-c, -e ...)? */
static int has_code_flag(const char *a, const char *flags)
{
	if (a[0] != '-' || a[1] == '-')
		return 0;
	for (const char *p = a + 1; *p; p++)
		if (strchr(flags, *p))
			return 1;
	return 0;
}

static int is_one_of(const char *a, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(a, *list))
			return 1;
	return 0;
}

/* Returns the argv index of the script (or -1), skipping the interpreter's
 * options. For python -m, *module is set instead. */
static int find_script_arg(enum family fam, char *const *argv, int start, const char **module)
{
	static const char *const py_arg[] = { "-W", "-X", "--check-hash-based-pycs", NULL };
	static const char *const sh_arg[] = { "-o", "+o", "-O", "+O", "--rcfile", "--init-file", NULL };
	static const char *const node_arg[] = { "-r", "--require",    "--loader", "--import", "--experimental-loader",
						"-C", "--conditions", NULL };
	static const char *const node_code[] = { "-e", "--eval", "-p", "--print", NULL };
	static const char *const perl_arg[] = { "-I", "-M", "-m", NULL };
	static const char *const ruby_arg[] = { "-I", "-r", "-C", "-E", "-F", NULL };
	int i = start;
	*module = NULL;
	for (; argv[i]; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if ((a[0] != '-' && !(fam == FAM_SH && a[0] == '+')) || !strcmp(a, "-"))
			break;
		switch (fam) {
		case FAM_PY:
			if (is_one_of(a, py_arg)) {
				i++;
				continue;
			}
			if (a[1] == '-' || a[1] == 'W' || a[1] == 'X')
				continue;
			for (const char *p = a + 1; *p; p++) {
				if (*p == 'c')
					return -1;
				if (*p == 'm') {
					*module = p[1] ? p + 1 : argv[i + 1];
					return -1;
				}
				if (*p == 'W' || *p == 'X') {
					if (!p[1])
						i++;
					break;
				}
			}
			continue;
		case FAM_SH:
			if (has_code_flag(a, "c"))
				return -1;
			if (is_one_of(a, sh_arg))
				i++;
			continue;
		case FAM_NODE:
			if (is_one_of(a, node_code))
				return -1;
			if (is_one_of(a, node_arg))
				i++;
			continue;
		case FAM_PERL:
			if (has_code_flag(a, "eE"))
				return -1;
			if (is_one_of(a, perl_arg))
				i++;
			continue;
		case FAM_RUBY:
			if (has_code_flag(a, "e"))
				return -1;
			if (is_one_of(a, ruby_arg))
				i++;
			continue;
		case FAM_R:
			if (!strcmp(a, "-e"))
				return -1;
			continue;
		case FAM_NONE:
			return -1;
		}
	}
	return argv[i] && strcmp(argv[i], "-") ? i : -1;
}

static int inside_project(struct ctx *c, const char *abs, struct strbuf *name)
{
	fp_store_path(c->st, NULL, abs, name);
	return name->buf[0] != '/';
}

/* Folded, so the cycle check sees one name per file ("d/../a.sh" is "a.sh"). */
static void make_abs(struct ctx *c, const char *p, struct strbuf *out)
{
	path_absolute(c->cwd, p, out);
}

/* The stat signature that says a file or directory is unchanged. */
static void sig_of(const struct stat *sb, struct strbuf *out)
{
	/* fixed-width hex, by hand: this runs once per file on every hit */
	uint64_t v[5] = { (uint64_t)sb->st_dev, (uint64_t)sb->st_ino, (uint64_t)sb->st_size,
			  (uint64_t)ts_ns(&sb->st_mtim), (uint64_t)ts_ns(&sb->st_ctim) };
	char buf[5 * 16 + 1];
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 16; j++)
			buf[i * 16 + j] = "0123456789abcdef"[(v[i] >> (60 - 4 * j)) & 15];
	buf[80] = '\0';
	sb_add(out, buf, sizeof(buf));
}

static void add_sig(struct ctx *c, const struct stat *sb, struct strbuf *out)
{
	int64_t now = now_ns();
	if (now - ts_ns(&sb->st_mtim) < 2000000000LL || now - ts_ns(&sb->st_ctim) < 2000000000LL)
		c->quiet = 0; /* racy: could change again unseen */
	sig_of(sb, out);
}

/* What import resolution saw at a path: a file, a directory, nothing. */
static char path_state(const char *p, struct stat *sb)
{
	if (fsrec_do_stat(p, sb) < 0)
		return '-';
	return S_ISREG(sb->st_mode) ? 'f' : S_ISDIR(sb->st_mode) ? 'd' : 'o';
}

/* Resolution's answer depends on every path it looked at, found or not:
 * each probe is recorded with what it saw, and a cached closure is valid
 * only while every probe would see the same. */
static char probe(struct ctx *c, const char *p, struct stat *sb)
{
	char state = path_state(p, sb);
	for (size_t i = 0; i < c->probes.n; i++)
		if (!strcmp(c->probes.v[i] + 1, p))
			return state;
	struct strbuf e = STRBUF_INIT;
	sb_addc(&e, state);
	sb_adds(&e, p);
	sv_push_nocopy(&c->probes, sb_detach(&e));
	return state;
}

static int probe_file(struct ctx *c, const char *p, struct stat *sb)
{
	return probe(c, p, sb) == 'f';
}

static int is_file(const char *p, struct stat *sb)
{
	return fsrec_do_stat(p, sb) == 0 && S_ISREG(sb->st_mode);
}

/* Canonical (or raw) digest of a file plus the names it imports/sources,
 * from the stat cache when the file is unchanged. deps is filled with the
 * dependency names; *lang with the detected language. */
static int source_digest(struct ctx *c, const char *abs, const struct stat *sb, int runner, struct digest *d,
			 struct strvec *deps, enum canon_lang *lang)
{
	struct strbuf cached = STRBUF_INIT, data = STRBUF_INIT, out = STRBUF_INIT;
	int kind = c->raw ? KIND_RAWDEPS : KIND_CANON, rc = -1;
	kind += KIND_RUNNER * (runner + 1);
	int found = store_cache_get(c->st, abs, kind, sb, d, &cached);
	if (found < 0)
		goto out;
	if (found) {
		/* deps blob: language byte, then NUL-terminated names */
		*lang = (enum canon_lang)(cached.len ? (unsigned char)cached.buf[0] : CANON_RAW);
		for (size_t p = 1; p < cached.len;) {
			size_t n = strnlen(cached.buf + p, cached.len - p);
			sv_push_nocopy(deps, xstrndup(cached.buf + p, n));
			p += n + 1;
		}
		rc = 0;
		goto out;
	}
	if (read_file_sb(abs, &data) < 0)
		goto out;
	*lang = canon_detect_run(abs, data.buf, data.len, runner);
	int fell_back = canon_source(*lang, data.buf ? data.buf : "", data.len, &out, deps);
	/* the environment variables it names, as "$NAME" deps (comments are
	 * gone from out unless the tokenizer fell back to the raw bytes) */
	struct strvec env = STRVEC_INIT;
	canon_env_refs(*lang, out.buf ? out.buf : "", out.len, &env);
	for (size_t i = 0; i < env.n; i++) {
		struct strbuf ref = STRBUF_INIT;
		sb_addf(&ref, "$%s", env.v[i]);
		sv_push(deps, ref.buf);
		sb_release(&ref);
	}
	sv_release(&env);
	struct hasher h;
	hasher_init(&h);
	if (c->raw || fell_back == 1 || *lang == CANON_RAW) {
		/* raw bytes: the same digest as any other file's content */
		hasher_free(&h);
		digest_of(data.buf ? data.buf : "", data.len, d);
	} else {
		hasher_str(&h, "cashet-canon");
		hasher_u64(&h, (uint64_t)*lang);
		hasher_field(&h, out.buf ? out.buf : "", out.len);
		hasher_final(&h, d);
	}
	sb_reset(&cached);
	sb_addc(&cached, (char)*lang);
	for (size_t i = 0; i < deps->n; i++)
		sb_add(&cached, deps->v[i], strlen(deps->v[i]) + 1);
	store_cache_put(c->st, abs, kind, sb, d, cached.buf, cached.len);
	rc = 0;
out:
	sb_release(&cached);
	sb_release(&data);
	sb_release(&out);
	return rc;
}

int script_source_digest(struct store *st, const char *abs, const struct stat *sb, unsigned flags, struct digest *d,
			 struct strvec *env)
{
	struct ctx c = { .st = st, .raw = !!(flags & SCRIPT_RAW) };
	struct strvec deps = STRVEC_INIT;
	enum canon_lang lang;
	int rc = source_digest(&c, abs, sb, -1, d, &deps, &lang);
	for (size_t i = 0; rc == 0 && env && i < deps.n; i++)
		if (deps.v[i][0] == '$')
			sv_push(env, deps.v[i] + 1);
	sv_release(&deps);
	return rc;
}

/* An environment variable the code names: hashed, and kept in the
 * closure record (E<name>) so a replayed closure hashes it too. */
static void env_ref(struct ctx *c, const char *name)
{
	fp_add_env(c->r, c->env, name);
	sb_addf(&c->files, "E%s", name);
	sb_addc(&c->files, '\0');
	sb_addc(&c->files, '\0');
}

/* A dotted module under one directory: every package __init__.py on the
 * way, and the module itself as a file or a package. Returns 1 if the top
 * level resolved there (Python stops searching sys.path at that point). */
static int py_under(struct ctx *c, const char *dir, const char *mod, struct strvec *files)
{
	struct strbuf p = STRBUF_INIT;
	struct stat sb;
	int top = 0;
	sb_adds(&p, dir);
	const char *s = mod;
	while (*s) {
		const char *e = strchrnul(s, '.');
		sb_addc(&p, '/');
		sb_add(&p, s, (size_t)(e - s));
		size_t len = p.len;
		sb_adds(&p, "/__init__.py");
		if (probe_file(c, p.buf, &sb)) {
			sv_push(files, p.buf);
			top = 1;
		} else {
			sb_setlen(&p, len);
			sb_adds(&p, ".py");
			if (probe_file(c, p.buf, &sb)) {
				sv_push(files, p.buf);
				top = 1;
				sb_setlen(&p, len);
				break; /* a module file: the rest are attributes */
			}
			sb_setlen(&p, len);
			struct stat dsb;
			if (probe(c, p.buf, &dsb) == 'd')
				top = 1; /* namespace package */
			else
				break;
		}
		sb_setlen(&p, len);
		s = *e ? e + 1 : e;
	}
	sb_release(&p);
	return top;
}

static void py_resolve(struct ctx *c, const char *from, const char *mod, struct strvec *files)
{
	if (mod[0] == '.') {
		struct strbuf base = STRBUF_INIT;
		sb_adds(&base, from);
		size_t dots = strspn(mod, ".");
		for (size_t i = 0; i < dots; i++) {
			char *slash = strrchr(base.buf, '/');
			if (!slash)
				break;
			sb_setlen(&base, (size_t)(slash - base.buf));
		}
		if (mod[dots]) {
			py_under(c, base.buf, mod + dots, files);
		} else {
			struct stat sb;
			sb_adds(&base, "/__init__.py");
			if (probe_file(c, base.buf, &sb))
				sv_push(files, base.buf);
		}
		sb_release(&base);
		return;
	}
	for (size_t i = 0; i < c->pyroots.n; i++)
		if (py_under(c, c->pyroots.v[i], mod, files))
			return;
}

static void sh_resolve(struct ctx *c, const char *from, const char *path, struct strvec *files)
{
	struct strbuf p = STRBUF_INIT;
	struct stat sb;
	make_abs(c, path, &p);
	if (!probe_file(c, p.buf, &sb) && path[0] != '/') {
		const char *slash = strrchr(from, '/');
		sb_reset(&p);
		sb_add(&p, from, slash ? (size_t)(slash - from) : 0);
		sb_addf(&p, "/%s", path);
	}
	if (probe_file(c, p.buf, &sb))
		sv_push(files, p.buf);
	sb_release(&p);
}

/* runner: the language of what runs the file (canon_detect_run), -1
 * when not known. */
static int add_source(struct ctx *c, const char *kind, const char *path, int runner)
{
	struct strbuf abs = STRBUF_INIT, name = STRBUF_INIT;
	struct strvec deps = STRVEC_INIT, files = STRVEC_INIT;
	struct stat sb;
	struct digest d;
	enum canon_lang lang = CANON_RAW;
	int rc = -1;
	make_abs(c, path, &abs);
	for (size_t i = 0; i < c->seen.n; i++)
		if (!strcmp(c->seen.v[i], abs.buf)) {
			rc = 0; /* cycles and diamonds */
			goto out;
		}
	sv_push(&c->seen, abs.buf);
	if (!is_file(abs.buf, &sb)) {
		err_sys("%s", path);
		goto out;
	}
	inside_project(c, abs.buf, &name);
	if (source_digest(c, abs.buf, &sb, runner, &d, &deps, &lang) < 0)
		goto out;
	run_add_part(c->r, kind, name.buf, &d);
	/* closure record: F<path> <sig> <kind> <name> <digest>, NUL-separated */
	char hx[DIGEST_HEX];
	digest_hex(&d, hx);
	sb_addf(&c->files, "F%s", abs.buf);
	sb_addc(&c->files, '\0');
	add_sig(c, &sb, &c->files);
	sb_add(&c->files, kind, strlen(kind) + 1);
	sb_add(&c->files, name.buf, name.len + 1);
	sb_add(&c->files, hx, sizeof(hx));
	for (size_t i = 0; i < deps.n; i++)
		if (deps.v[i][0] == '$')
			env_ref(c, deps.v[i] + 1);
	/* a traced run sees what a script sources as a plain file (no
	 * extension says it is shell), blind to the variables it names:
	 * sourced files are followed always (a script has few) */
	for (size_t i = 0; (c->follow || lang == CANON_SH) && i < deps.n; i++) {
		if (deps.v[i][0] == '$')
			continue;
		if (lang == CANON_PYTHON)
			py_resolve(c, abs.buf, deps.v[i], &files);
		else if (lang == CANON_SH)
			sh_resolve(c, abs.buf, deps.v[i], &files);
	}
	rc = 0;
	for (size_t i = 0; rc == 0 && i < files.n; i++) {
		struct strbuf fn = STRBUF_INIT;
		if (inside_project(c, files.v[i], &fn))
			rc = add_source(c, "source", files.v[i], (int)lang);
		sb_release(&fn);
	}
out:
	sb_release(&abs);
	sb_release(&name);
	sv_release(&deps);
	sv_release(&files);
	return rc;
}

/* Replays a recorded closure if every file and directory in it is
 * unchanged. Returns 1 if replayed, 0 if stale. */
static int closure_replay(struct ctx *c, const struct strbuf *rec)
{
	struct strbuf sig = STRBUF_INIT;
	const char *p = rec->buf, *end = rec->buf + rec->len;
	size_t nparts = c->r->nparts;
	int ok = 1;
	/* first pass: validate everything; second: emit the parts */
	for (int pass = 0; ok && pass < 2; pass++) {
		for (p = rec->buf; ok && p < end;) {
			const char *fields[5] = { 0 };
			int nf = p[0] == 'F' ? 5 : 2;
			for (int i = 0; i < nf; i++) {
				if (p >= end) {
					ok = 0;
					break;
				}
				fields[i] = p;
				p += strlen(p) + 1;
			}
			if (!ok)
				break;
			if (fields[0][0] == 'E') {
				if (pass == 1)
					fp_add_env(c->r, c->env, fields[0] + 1);
			} else if (pass == 0 && fields[0][0] == 'P') {
				struct stat sb;
				ok = path_state(fields[0] + 1, &sb) == fields[1][0];
			} else if (pass == 0) {
				struct stat sb;
				sb_reset(&sig);
				ok = fsrec_do_stat(fields[0] + 1, &sb) == 0;
				if (ok)
					sig_of(&sb, &sig);
				ok = ok && !strcmp(sig.buf, fields[1]);
			} else if (fields[0][0] == 'F') {
				struct digest d;
				ok = digest_parse(fields[4], &d) == 0;
				if (ok)
					run_add_part(c->r, fields[2], fields[3], &d);
			}
		}
	}
	if (!ok) {
		run_truncate_parts(c->r, nparts); /* drop anything half-emitted */
		err_clear();
	}
	sb_release(&sig);
	return ok;
}

/* A source and everything it pulls in. The whole closure (files with their
 * digests, and the directories resolution looked into) is cached under the
 * top file, so a hit stats each file once and parses nothing. */
static int add_tree(struct ctx *c, const char *kind, const char *path, int runner)
{
	struct strbuf key = STRBUF_INIT, rec = STRBUF_INIT, abs = STRBUF_INIT;
	struct stat sb;
	struct digest d = { { 0 } };
	int rc;
	make_abs(c, path, &abs);
	if (!is_file(abs.buf, &sb)) {
		rc = add_source(c, kind, path, runner); /* reports the error */
		goto out;
	}
	sb_addf(&key, "closure:%s:%d:%d:%d:%s", kind, c->raw, c->follow, runner, abs.buf);
	for (size_t i = 0; i < c->pyroots.n; i++)
		sb_addf(&key, ":%s", c->pyroots.v[i]);
	if (store_cache_get(c->st, key.buf, KIND_CLOSURE, &sb, &d, &rec) == 1 && closure_replay(c, &rec)) {
		rc = 0;
		goto out;
	}
	sv_release(&c->seen);
	sv_release(&c->probes);
	sb_reset(&c->files);
	c->quiet = 1;
	rc = add_source(c, kind, path, runner);
	if (rc == 0) {
		/* probe record: P<path> <state> */
		for (size_t i = 0; i < c->probes.n; i++) {
			sb_addf(&c->files, "P%s", c->probes.v[i] + 1);
			sb_addc(&c->files, '\0');
			sb_add(&c->files, c->probes.v[i], 1);
			sb_addc(&c->files, '\0');
		}
		if (c->quiet)
			store_cache_put(c->st, key.buf, KIND_CLOSURE, &sb, &d, c->files.buf, c->files.len);
	}
out:
	sb_release(&key);
	sb_release(&rec);
	sb_release(&abs);
	return rc;
}

static void add_pythonpath(struct ctx *c)
{
	const char *pp = fp_getenv(c->env, "PYTHONPATH");
	struct strbuf p = STRBUF_INIT, abs = STRBUF_INIT;
	while (pp && *pp) {
		const char *e = strchrnul(pp, ':');
		sb_reset(&p);
		sb_add(&p, pp, (size_t)(e - pp));
		if (p.len) {
			make_abs(c, p.buf, &abs);
			sv_push(&c->pyroots, abs.buf);
		}
		pp = *e ? e + 1 : e;
	}
	sb_release(&p);
	sb_release(&abs);
}

/* The interpreter a "#!" line names, as written: "#!/usr/bin/env -S
 * python3 -u" -> "python3". -1 when script has none. */
static int shebang_word(const char *script, struct strbuf *word)
{
	char line[512];
	struct stat sb;
	/* never blocks: a FIFO or a device named so is no script (and the
	 * tracer asks with the exec stopped) */
	int fd = open(script, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -1;
	ssize_t n = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? read(fd, line, sizeof(line) - 1) : -1;
	close(fd);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return -1;
	line[n] = '\0';
	char *save = NULL, *w = strtok_r(line + 2, " \t\r\n", &save);
	if (w && !strcmp(base_name(w), "env")) {
		while ((w = strtok_r(NULL, " \t\r\n", &save)) && (w[0] == '-' || strchr(w, '=')))
			;
	}
	if (!w)
		return -1;
	sb_reset(word);
	sb_adds(word, w);
	return 0;
}

/* "#!/usr/bin/env -S python3 -u" -> resolved interpreter path. */
static int shebang_interp(struct ctx *c, const char *script, struct strbuf *interp)
{
	struct strbuf w = STRBUF_INIT;
	int rc = shebang_word(script, &w);
	if (rc == 0)
		rc = fp_which(w.buf, c->cwd, c->env, interp);
	sb_release(&w);
	return rc;
}

/* The words of a shell command string that is one simple command: blanks
 * between words, single quotes, double quotes without expansion. Anything
 * the shell would expand or treat as an operator makes it not simple (0). */
static int simple_words(const char *s, struct strvec *words)
{
	struct strbuf w = STRBUF_INIT;
	int in_word = 0, ok = 1;
	for (; ok && *s; s++) {
		if (*s == ' ' || *s == '\t') {
			if (in_word)
				sv_push(words, w.buf ? w.buf : "");
			sb_reset(&w);
			in_word = 0;
			continue;
		}
		in_word = 1;
		if (*s == '\'' || *s == '"') {
			const char *end = strchr(s + 1, *s);
			ok = end != NULL;
			for (const char *q = s + 1; ok && *s == '"' && q < end; q++)
				ok = !strchr("$`\\", *q);
			if (ok) {
				sb_add(&w, s + 1, (size_t)(end - s - 1));
				s = end;
			}
		} else if (isalnum((unsigned char)*s) || strchr("_./=+,:@%-^", *s)) {
			sb_addc(&w, *s);
		} else {
			ok = 0;
		}
	}
	if (ok && in_word)
		sv_push(words, w.buf ? w.buf : "");
	sb_release(&w);
	return ok;
}

/* The inline code of `sh -c CODE` (options may come between) or `python
 * -c CODE` (or -cCODE, the rest of the word), NULL if none. */
static const char *code_arg(char *const *argv, int start, enum family fam)
{
	for (int i = start; argv[i] && argv[i][0] == '-'; i++) {
		if (!has_code_flag(argv[i], "c"))
			continue;
		const char *f = strchr(argv[i] + 1, 'c');
		if (fam == FAM_PY && f[1])
			return f + 1;
		int k = i + 1;
		while (fam == FAM_SH && argv[k] && argv[k][0] == '-')
			k++; /* sh -c -e CODE */
		return argv[k];
	}
	return NULL;
}

/* The environment variables the inline code of argv (from start on)
 * names, for a shell or Python: `sh -c 'echo $LR'`, `python3 -c 'import
 * os; print(os.environ["LR"])'`. */
static enum canon_lang code_lang(enum family fam)
{
	return fam == FAM_SH ? CANON_SH : fam == FAM_PY ? CANON_PYTHON : CANON_RAW;
}

/* What code of lang names, comments left out (as source_digest does). */
static void code_names(enum canon_lang lang, const char *code, size_t len, struct strvec *names)
{
	struct strbuf out = STRBUF_INIT;
	struct strvec deps = STRVEC_INIT;
	canon_source(lang, code, len, &out, &deps);
	canon_env_refs(lang, out.buf ? out.buf : "", out.len, names);
	sb_release(&out);
	sv_release(&deps);
}

static void inline_env_refs(char *const *argv, enum family fam, int start, struct strvec *names)
{
	enum canon_lang lang = code_lang(fam);
	const char *code = lang == CANON_RAW ? NULL : code_arg(argv, start, fam);
	if (code)
		code_names(lang, code, strlen(code), names);
}

/* The command's own inline code: what it names is hashed. */
static void code_env_refs(struct ctx *c, char *const *argv, enum family fam, int start)
{
	struct strvec names = STRVEC_INIT;
	inline_env_refs(argv, fam, start, &names);
	for (size_t k = 0; k < names.n; k++)
		fp_add_env(c->r, c->env, names.v[k]);
	sv_release(&names);
}

/* A shell or Python, or a script of one run by its "#!" line. */
static int exec_wants(const char *path)
{
	enum family fam = family_of(path);
	struct strbuf w = STRBUF_INIT;
	if (fam == FAM_NONE && shebang_word(path, &w) == 0)
		fam = family_of(w.buf);
	sb_release(&w);
	return fam == FAM_SH || fam == FAM_PY;
}

/* Read for its names: a script of up to this much (a larger one is data
 * more than code). */
#define EXEC_SCRIPT_MAX ((size_t)1 << 20)

static void exec_names(const char *path, const char *cwd, char *const *argv, struct strvec *names)
{
	enum family fam = family_of(path);
	/* no shell or Python by name: exec_wants found one's "#!" line */
	int script = fam == FAM_NONE;
	const char *module = NULL;
	int i = script ? 0 : find_script_arg(fam, argv, 1, &module);
	if (i < 0) {
		if (!module)
			inline_env_refs(argv, fam, 1, names);
		return;
	}
	/* a script run by path (the program itself when started by its "#!"
	 * line): one outside the project too (a project source is read for
	 * its names when the interpreter reads it) */
	struct strbuf abs = STRBUF_INIT, src = STRBUF_INIT;
	struct stat sb;
	const char *file = script ? path : argv[i];
	if (file[0] == '/' || cwd)
		path_absolute(cwd, file, &abs);
	if (abs.len && stat(abs.buf, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size <= EXEC_SCRIPT_MAX &&
	    read_file_sb(abs.buf, &src) == 0) {
		const char *code = src.buf ? src.buf : "";
		code_names(script ? canon_detect(abs.buf, code, src.len) : code_lang(fam), code, src.len, names);
	}
	err_clear(); /* unreadable: the command could not run it either */
	sb_release(&abs);
	sb_release(&src);
}

const struct trace_exec_hook script_exec_hook = { exec_wants, exec_names };

/* `sh -c 'python3 train.py --lr 0.1'` (a dag.toml string cmd is run so):
 * when the code is one simple command, the script it runs is found as if
 * that command were run directly, canonical form and imports included. */
static int sh_code_script(struct store *st, const struct script_spec *spec, int start, struct run_record *r)
{
	struct strvec words = STRVEC_INIT;
	struct strbuf exe = STRBUF_INIT;
	struct script_found inner_found;
	const char *code = code_arg(spec->argv, start, FAM_SH);
	int rc = 0;
	if (code && simple_words(code, &words) && words.n && fp_which(words.v[0], spec->cwd, spec->env, &exe) == 0) {
		struct script_spec inner = *spec;
		inner.argv = words.v;
		inner.exe = exe.buf;
		inner.deps = NULL; /* the outer command's, added once */
		rc = script_parts(st, &inner, r, &inner_found);
	}
	sv_release(&words);
	sb_release(&exe);
	return rc;
}

int script_parts(struct store *st, const struct script_spec *spec, struct run_record *r, struct script_found *found)
{
	struct ctx c = {
		.st = st, .r = r, .raw = spec->raw, .cwd = spec->cwd, .env = spec->env, .follow = spec->follow
	};
	struct strbuf exe = STRBUF_INIT, dir = STRBUF_INIT, interp = STRBUF_INIT;
	const char *module = NULL;
	int rc = -1, start = 1;
	char *const *argv = spec->argv;
	found->script_arg = -1;
	found->exe_is_script = 0;
	if (!spec->exe)
		goto deps;
	sb_adds(&exe, spec->exe);
	/* env [-i] [NAME=VALUE]... INTERPRETER ... */
	if (!strcmp(base_name(exe.buf), "env")) {
		while (argv[start] && (argv[start][0] == '-' || strchr(argv[start], '=')))
			start++;
		if (!argv[start] || fp_which(argv[start], c.cwd, c.env, &exe) < 0)
			goto deps;
		start++;
	}
	struct stat sb;
	enum family fam = family_of(exe.buf);
	if (fam == FAM_NONE) {
		/* An executable script run directly. */
		if (shebang_interp(&c, exe.buf, &interp) == 0 && start == 1) {
			struct digest d;
			found->exe_is_script = 1;
			if (fsrec_do_stat(interp.buf, &sb) == 0 && store_file_digest(st, interp.buf, &sb, &d) == 0)
				run_add_part(r, "interp", interp.buf, &d);
			const char *slash = strrchr(exe.buf, '/');
			sb_add(&dir, exe.buf, (size_t)(slash - exe.buf));
			sv_push(&c.pyroots, dir.buf);
			add_pythonpath(&c);
			if (add_tree(&c, "script", exe.buf, -1) < 0)
				goto out;
		}
		goto deps;
	}
	int i = find_script_arg(fam, argv, start, &module);
	/* the interpreter says the language of a script without an extension
	 * (bash build, python3 tool); one we do not tokenize (zsh, python2)
	 * leaves it to the extension and the "#!" line */
	int runner = canon_lang_of_exe(exe.buf);
	if (runner == CANON_RAW && (fam == FAM_PY || fam == FAM_SH))
		runner = -1;
	if (module && fam == FAM_PY) {
		/* python -m: sys.path[0] is the working directory */
		struct strvec files = STRVEC_INIT;
		sv_push(&c.pyroots, c.cwd);
		add_pythonpath(&c);
		py_resolve(&c, ".", module, &files);
		/* -m on a package runs its __main__.py */
		size_t n = files.n ? strlen(files.v[files.n - 1]) : 0;
		if (n > 12 && !strcmp(files.v[files.n - 1] + n - 12, "/__init__.py")) {
			struct strbuf main_py = STRBUF_INIT;
			sb_add(&main_py, files.v[files.n - 1], n - 12);
			sb_adds(&main_py, "/__main__.py");
			if (is_file(main_py.buf, &sb))
				sv_push(&files, main_py.buf);
			sb_release(&main_py);
		}
		/* the module itself is the last file found: its packages come first */
		int ok = 0;
		for (size_t k = 0; k < files.n; k++) {
			struct strbuf fn = STRBUF_INIT;
			if (inside_project(&c, files.v[k], &fn))
				ok = add_tree(&c, k + 1 == files.n ? "script" : "source", files.v[k], runner);
			sb_release(&fn);
			if (ok < 0)
				break;
		}
		sv_release(&files);
		if (ok < 0)
			goto out;
		goto deps;
	}
	if (i < 0 && fam == FAM_SH && start == 1 && sh_code_script(st, spec, start, r) < 0)
		goto out;
	if (i < 0) {
		code_env_refs(&c, argv, fam, start);
		goto deps;
	}
	struct strbuf main_py = STRBUF_INIT;
	make_abs(&c, argv[i], &main_py);
	const char *script = main_py.buf;
	int dir_main = fam == FAM_PY && fsrec_do_stat(script, &sb) == 0 && S_ISDIR(sb.st_mode);
	if (dir_main) /* python DIR runs DIR/__main__.py with DIR first on sys.path */
		sb_adds(&main_py, "/__main__.py");
	script = main_py.buf;
	if (!is_file(script, &sb)) {
		sb_release(&main_py);
		goto deps; /* the interpreter will fail; argv is hashed anyway */
	}
	if (!dir_main)
		found->script_arg = i;
	/* Python puts the directory of the script's real path on sys.path: a
	 * symlinked script imports from next to its target. */
	char *real = fam == FAM_PY ? fsrec_do_realpath(script) : NULL;
	make_abs(&c, real ? real : script, &dir);
	free(real);
	char *slash = strrchr(dir.buf, '/');
	sb_setlen(&dir, (size_t)(slash - dir.buf));
	sv_push(&c.pyroots, dir.buf);
	add_pythonpath(&c);
	rc = add_tree(&c, "script", script, runner);
	sb_release(&main_py);
	if (rc < 0)
		goto out;
	rc = -1;
deps:
	for (size_t k = 0; spec->deps && k < spec->deps->n; k++) {
		const char *pat = spec->deps->v[k];
		glob_t g;
		int gr = glob_at(c.cwd, pat, GLOB_NOCHECK, &g);
		if (gr != 0) {
			err_set("--dep %s: cannot expand", pat);
			goto out;
		}
		if (!c.pyroots.n) {
			sv_push(&c.pyroots, c.cwd);
		}
		int bad = 0;
		for (size_t j = 0; !bad && j < g.gl_pathc; j++)
			bad = add_tree(&c, "dep", g.gl_pathv[j], -1) < 0;
		globfree(&g);
		if (bad) {
			err_set("--dep %s: %s", pat, err_msg());
			goto out;
		}
	}
	rc = 0;
out:
	sv_release(&c.seen);
	sv_release(&c.pyroots);
	sv_release(&c.probes);
	sb_release(&c.files);
	sb_release(&exe);
	sb_release(&dir);
	sb_release(&interp);
	return rc;
}
