/* fp: builds the fingerprint of a command. When unsure whether something
 * matters, it is hashed: a spurious miss costs a run, a false hit replays a
 * stale result. */
#include "key/fp.h"
#include "key/canon.h"
#include "key/dirscan.h"
#include "key/params.h"
#include "key/script.h"
#include "util/fsrec.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

const char *fp_getenv(char *const *env, const char *name)
{
	size_t n = strlen(name);
	const char *v = NULL;
	for (; env && *env && !v; env++)
		if (!strncmp(*env, name, n) && (*env)[n] == '=')
			v = *env + n + 1;
	fsrec_env(name, v);
	return v;
}

void fp_store_path(const struct store *st, const char *cwd, const char *path, struct strbuf *out)
{
	struct strbuf abs = STRBUF_INIT;
	const char *root = store_root(st), *a = path;
	size_t rl = strlen(root);
	if (path == out->buf || !path_is_normal(path)) { /* a trace's 20,000 are: no copy */
		path_absolute(cwd, path, &abs);
		a = abs.buf;
	}
	sb_reset(out);
	if (!strcmp(a, root))
		sb_adds(out, ".");
	else if (rl == 1 && root[0] == '/')
		sb_adds(out, a + 1);
	else if (!strncmp(a, root, rl) && a[rl] == '/')
		sb_adds(out, a + rl + 1);
	else
		sb_adds(out, a);
	sb_release(&abs);
}

/* A regular file only: hashing a FIFO named so would wait for a writer
 * for ever (execve refuses it anyway). */
static int runnable(const char *abs)
{
	struct stat sb;
	return stat_memo(abs, &sb) == 0 && S_ISREG(sb.st_mode) && fsrec_do_access(abs, X_OK) == 0;
}

int fp_which(const char *argv0, const char *cwd, char *const *env, struct strbuf *out)
{
	sb_reset(out);
	if (strchr(argv0, '/')) {
		path_absolute(cwd, argv0, out);
		return runnable(out->buf) ? 0 : -1;
	}
	const char *path = fp_getenv(env, "PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *e = strchrnul(path, ':');
		sb_reset(out);
		if (e == path)
			sb_adds(out, ".");
		else
			sb_add(out, path, (size_t)(e - path));
		sb_addf(out, "/%s", argv0);
		struct strbuf abs = STRBUF_INIT;
		path_absolute(cwd, out->buf, &abs);
		if (runnable(abs.buf)) {
			sb_reset(out);
			sb_add(out, abs.buf, abs.len);
			sb_release(&abs);
			return 0;
		}
		sb_release(&abs);
		path = *e ? e + 1 : e;
	}
	return -1;
}

static void digest_str(const char *s, struct digest *d)
{
	digest_of(s, strlen(s), d);
}

void fp_mode_digest(struct digest *d, mode_t mode)
{
	/* The executable bit changes what a script does when run. */
	if (mode & 0111) {
		struct hasher h;
		hasher_init(&h);
		hasher_bytes(&h, d->b, DIGEST_LEN);
		hasher_str(&h, "+x");
		hasher_final(&h, d);
	}
}

/* A part that names a regular file's content. path is absolute. */
static int add_file_part(struct store *st, struct run_record *r, const char *kind, const char *path,
			 const struct stat *sb)
{
	struct strbuf abs = STRBUF_INIT, name = STRBUF_INIT;
	struct digest d;
	int rc;
	path_absolute(NULL, path, &abs);
	fp_store_path(st, NULL, abs.buf, &name);
	rc = store_file_digest(st, abs.buf, sb, &d);
	if (rc == 0) {
		fp_mode_digest(&d, sb->st_mode);
		run_add_part(r, kind, name.buf, &d);
	}
	sb_release(&abs);
	sb_release(&name);
	return rc;
}

/* An inherited descriptor's file (fp_spec.fds). Through the stat cache
 * when its path still leads to it, so that a hit costs a stat; else (the
 * deleted temp file of a long here-document, a path replaced since) read
 * through /proc, which opens it anew: the offset the command starts from
 * stays where it is. The part is named by the descriptor, the path only
 * its detail: a here-document's temp file has another name each time. */
static int add_fd_part(struct store *st, struct run_record *r, const struct fp_fd *f)
{
	struct strbuf path = STRBUF_INIT, name = STRBUF_INIT;
	struct stat fsb, psb;
	struct digest d;
	struct hasher h;
	int rc = -1;
	if (fstat(f->fd, &fsb) < 0) {
		err_sys("cannot read fd %d", f->fd);
		goto out;
	}
	if (f->path && f->path[0] == '/' && stat(f->path, &psb) == 0 && psb.st_dev == fsb.st_dev &&
	    psb.st_ino == fsb.st_ino) {
		if (store_file_digest(st, f->path, &psb, &d) < 0)
			goto out;
	} else {
		sb_addf(&path, "/proc/self/fd/%d", f->fd);
		if (digest_file_stat(path.buf, &fsb, &d) < 0)
			goto out;
	}
	/* a reader starts at the offset: `5<file` after a `read` is another input */
	off_t pos = lseek(f->fd, 0, SEEK_CUR);
	hasher_init(&h);
	hasher_bytes(&h, d.b, DIGEST_LEN);
	hasher_u64(&h, pos < 0 ? 0 : (uint64_t)pos);
	hasher_final(&h, &d);
	sb_addf(&name, "%d", f->fd);
	struct run_part *p = run_add_part(r, "fd", name.buf, &d);
	if (f->path && f->path[0] == '/')
		fp_store_path(st, NULL, f->path, &path);
	else if (f->path) {
		sb_reset(&path);
		sb_adds(&path, f->path);
	}
	if (f->path)
		p->detail = xstrdup(path.buf);
	rc = 0;
out:
	sb_release(&path);
	sb_release(&name);
	return rc;
}

/* An input path (absolute): a file, or what dirscan walks. */
static int add_path(struct store *st, const struct strvec *outputs, struct run_record *r, const char *path)
{
	struct stat sb;
	if (fsrec_do_stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
		/* the command's own script (or a source it loads) is in the
		 * key already, in canonical form: a comment edit stays a hit */
		struct strbuf name = STRBUF_INIT;
		fp_store_path(st, NULL, path, &name);
		int script = fp_has_part(r, "script", name.buf) || fp_has_part(r, "source", name.buf) ||
			     fp_has_part(r, "dep", name.buf);
		sb_release(&name);
		return script ? 0 : add_file_part(st, r, "input", path, &sb);
	}
	return dirscan_add(st, outputs, r, path);
}

static int add_input(struct store *st, const struct fp_spec *spec, const struct strvec *outputs, struct run_record *r,
		     const char *pattern)
{
	struct strbuf abs = STRBUF_INIT, name = STRBUF_INIT;
	struct strvec matches = STRVEC_INIT;
	int rc = 0;
	if (!has_glob(pattern)) {
		path_absolute(spec->cwd, pattern, &abs);
		rc = add_path(st, outputs, r, abs.buf);
		sb_release(&abs);
		return rc;
	}
	if (glob_paths(spec->cwd, pattern, &matches) < 0)
		return err_set("input %s: cannot expand the pattern", pattern);
	/* The match list is part of the key: a new matching file is a change.
	 * It lists store names, so another checkout of the project agrees.
	 * Outputs and the store are not inputs (see dirscan). */
	struct strbuf list = STRBUF_INIT;
	for (size_t i = 0; i < matches.n; i++) {
		fp_store_path(st, NULL, matches.v[i], &name);
		if (store_holds(st, matches.v[i]) || dirscan_is_output(outputs, name.buf))
			continue;
		sb_add(&list, name.buf, name.len + 1);
		if ((rc = add_path(st, outputs, r, matches.v[i])) < 0)
			break;
	}
	sb_release(&name);
	sv_release(&matches);
	struct digest d;
	digest_of(list.buf ? list.buf : "", list.len, &d);
	run_add_part(r, "glob", pattern, &d);
	sb_release(&list);
	return rc;
}

/* Values are kept for `why` ("LR changed: 0.1 -> 0.01"), except those that
 * look like credentials, since a store may be shared. */
static int secret_name(const char *name)
{
	static const char *const words[] = { "TOKEN", "SECRET", "PASS", "KEY", "CREDENTIAL", "AUTH", NULL };
	for (const char *const *w = words; *w; w++)
		if (strcasestr(name, *w))
			return 1;
	return 0;
}

/* The entries of env ("NAME=value", or the names alone) whose name
 * matches pattern, sorted; not the session's own (canon_env_ambient) when
 * no_ambient is set. */
static void env_matching(char *const *env, const char *pattern, int names_only, int no_ambient, struct strvec *out)
{
	fsrec_env_list(pattern);
	for (char *const *e = env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		char *name = xstrndup(*e, (size_t)(eq - *e));
		if (fnmatch(pattern, name, 0) == 0 && !(no_ambient && canon_env_ambient(name)))
			sv_push(out, names_only ? name : *e);
		free(name);
	}
	sv_sort(out);
}

/* A pattern the code names (${!P_*}, a bare env: canon_env_refs): the
 * names and values of what it matches, in order, but for the variables a
 * shell sets itself and the session's own (canon_env_ambient), which the
 * code does not compute with. */
static void env_pattern_digest(char *const *env, const char *pattern, struct digest *d, size_t *count)
{
	struct strvec vars = STRVEC_INIT;
	struct strbuf all = STRBUF_INIT;
	env_matching(env, pattern, 0, 1, &vars);
	for (size_t i = 0; i < vars.n; i++)
		sb_add(&all, vars.v[i], strlen(vars.v[i]) + 1);
	digest_of(all.buf ? all.buf : "", all.len, d);
	*count = vars.n;
	sv_release(&vars);
	sb_release(&all);
}

void fp_env_digest(char *const *env, const char *name, struct digest *d)
{
	struct hasher h;
	size_t count;
	if (has_glob(name)) {
		env_pattern_digest(env, name, d, &count);
		return;
	}
	const char *v = fp_getenv(env, name);
	hasher_init(&h);
	/* Unset and empty are different. */
	hasher_u64(&h, v != NULL);
	if (v)
		hasher_str(&h, v);
	hasher_final(&h, d);
}

void fp_add_env(struct run_record *r, char *const *env, const char *name)
{
	if (fp_has_part(r, "env", name))
		return; /* named twice: by -e and by a script, say */
	struct digest d;
	if (has_glob(name)) {
		size_t count;
		env_pattern_digest(env, name, &d, &count);
		run_add_part(r, "env", name, &d)->detail = xstrdup(count == 1 ? "1 variable" : "some variables");
		return;
	}
	const char *v = fp_getenv(env, name);
	fp_env_digest(env, name, &d);
	struct run_part *p = run_add_part(r, "env", name, &d);
	if (!v)
		p->detail = xstrdup("(unset)");
	else if (!secret_name(name) && strlen(v) <= 200)
		p->detail = xstrdup(v);
}

static void add_env_pattern(struct run_record *r, char *const *env, const char *pattern)
{
	struct strvec names = STRVEC_INIT;
	struct strbuf list = STRBUF_INIT;
	env_matching(env, pattern, 1, 0, &names);
	for (size_t i = 0; i < names.n; i++) {
		sb_add(&list, names.v[i], strlen(names.v[i]) + 1);
		fp_add_env(r, env, names.v[i]);
	}
	struct digest d;
	digest_of(list.buf ? list.buf : "", list.len, &d);
	run_add_part(r, "env-pattern", pattern, &d);
	sv_release(&names);
	sb_release(&list);
}

/* Version-manager shims (pyenv, rbenv, nodenv, asdf) are scripts that pick
 * the real interpreter from an environment variable or the nearest version
 * file: those choose the interpreter, so they are hashed with it. */
static int add_shim_parts(struct store *st, const struct fp_spec *spec, struct run_record *r, const char *exe)
{
	static const struct {
		const char *marker, *var, *file;
	} managers[] = {
		{ "/.pyenv/shims/", "PYENV_VERSION", ".python-version" },
		{ "/.rbenv/shims/", "RBENV_VERSION", ".ruby-version" },
		{ "/.nodenv/shims/", "NODENV_VERSION", ".node-version" },
		{ "/.asdf/shims/", NULL, ".tool-versions" },
	};
	struct strbuf p = STRBUF_INIT;
	int rc = 0;
	for (size_t m = 0; m < sizeof(managers) / sizeof(*managers); m++) {
		const char *shims = strstr(exe, managers[m].marker);
		if (!shims)
			continue;
		if (managers[m].var)
			fp_add_env(r, spec->env, managers[m].var);
		/* the nearest version file up from the working directory, as the shim looks */
		sb_reset(&p);
		sb_adds(&p, spec->cwd);
		for (;;) {
			size_t base = p.len;
			struct stat sb;
			sb_addf(&p, "/%s", managers[m].file);
			if (fsrec_do_stat(p.buf, &sb) == 0 && S_ISREG(sb.st_mode)) {
				rc = add_file_part(st, r, "version-file", p.buf, &sb);
				break;
			}
			sb_setlen(&p, base);
			char *slash = strrchr(p.buf, '/');
			if (!slash || p.len <= 1)
				break;
			sb_setlen(&p, (size_t)(slash - p.buf));
		}
		/* and the global choice next to shims/: ~/.pyenv/version */
		struct stat sb;
		sb_reset(&p);
		sb_add(&p, exe, (size_t)(shims - exe) + strlen(managers[m].marker) - strlen("shims/"));
		sb_adds(&p, "version");
		if (rc == 0 && fsrec_do_stat(p.buf, &sb) == 0 && S_ISREG(sb.st_mode))
			rc = add_file_part(st, r, "version-file", p.buf, &sb);
	}
	sb_release(&p);
	return rc;
}

static void add_setting(struct run_record *r, const char *name, const char *value)
{
	struct digest d;
	digest_str(value, &d);
	run_add_part(r, "setting", name, &d)->detail = xstrdup(value);
}

int fp_has_part(const struct run_record *r, const char *kind, const char *name)
{
	for (size_t i = 0; i < r->nparts; i++)
		if (!strcmp(r->parts[i].kind, kind) && !strcmp(r->parts[i].name, name))
			return 1;
	return 0;
}

/* The process's umask, read once: umask() can only be read by setting it,
 * and nothing in cashet changes it. */
static mode_t umask_value;
static void read_umask(void)
{
	umask_value = umask(022);
	umask(umask_value);
}

/* What changes a command's output and costs nothing to hash, in every key:
 * the umask (the modes of what it creates), the locale and the time zone;
 * and the settings that decide how its inputs are found. */
static void add_ambient(struct run_record *r, const struct fp_spec *spec)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	static const char *const vars[] = { "LANG", "LC_ALL", "TZ", NULL };
	char buf[16];
	pthread_once(&once, read_umask);
	snprintf(buf, sizeof(buf), "%04o", (unsigned)umask_value);
	add_setting(r, "umask", buf);
	for (const char *const *v = vars; *v; v++)
		fp_add_env(r, spec->env, *v);
	struct strvec lc = STRVEC_INIT; /* sorted: the environment's order is not meaning */
	fsrec_env_list("LC_*");
	for (char *const *e = spec->env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!strncmp(*e, "LC_", 3) && eq)
			sv_push_nocopy(&lc, xstrndup(*e, (size_t)(eq - *e)));
	}
	sv_sort(&lc);
	for (size_t i = 0; i < lc.n; i++)
		fp_add_env(r, spec->env, lc.v[i]);
	sv_release(&lc);
	add_setting(r, "trace", spec->trace ? "on" : "off");
	if (spec->auto_outputs)
		add_setting(r, "auto-outputs", "on");
	if (spec->env_strict)
		add_setting(r, "env-mode", "strict");
	for (size_t i = 0; spec->trace && spec->ignore && i < spec->ignore->n; i++) {
		struct digest d;
		digest_str(spec->ignore->v[i], &d);
		run_add_part(r, "ignore", spec->ignore->v[i], &d);
	}
}

int fp_script_inputs(struct store *st, const struct fp_spec *spec, struct run_record *r)
{
	struct run_record tmp = { 0 };
	struct strbuf exe = STRBUF_INIT;
	struct script_found found;
	int have_exe = fp_which(spec->argv[0], spec->cwd, spec->env, &exe) == 0;
	struct script_spec ss = { spec->argv,        spec->cwd,   spec->env, have_exe ? exe.buf : NULL,
				  spec->raw_sources, &spec->deps, 1 };
	int rc = script_parts(st, &ss, &tmp, &found);
	char kind = spec->raw_sources ? INPUT_FILE : INPUT_SOURCE;
	for (size_t i = 0; rc == 0 && i < tmp.nparts; i++) {
		const struct run_part *p = &tmp.parts[i];
		if (!strcmp(p->kind, "script") || !strcmp(p->kind, "source") || !strcmp(p->kind, "dep"))
			run_add_input(r, kind, p->name)->d = p->hash;
	}
	run_record_free(&tmp);
	sb_release(&exe);
	return rc;
}

/* The env parts the scripts' code named (script_parts adds them as it
 * reads each source), taken out from part n0 on, their names kept: added
 * again after the declared ones (-e), they sit with them in the key and in
 * `diff`, whichever named a variable. */
static void take_env_parts(struct run_record *r, size_t n0, struct strvec *names)
{
	size_t k = n0;
	for (size_t i = n0; i < r->nparts; i++) {
		struct run_part *p = &r->parts[i];
		if (strcmp(p->kind, "env")) {
			r->parts[k++] = *p;
			continue;
		}
		sv_push(names, p->name);
		free(p->kind);
		free(p->name);
		free(p->detail);
	}
	r->nparts = k;
}

/* A declaration list as a set: `-i a -i b` and `-i b -i a` (or `-i a -i
 * a`) are the same key. */
static void as_set(const struct strvec *in, struct strvec *out)
{
	for (size_t i = 0; i < in->n; i++)
		sv_push(out, in->v[i]);
	sv_sort(out);
	size_t k = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (k && !strcmp(out->v[k - 1], out->v[i])) {
			free(out->v[i]);
			continue;
		}
		out->v[k++] = out->v[i];
	}
	out->n = k;
	if (out->v)
		out->v[k] = NULL;
}

void fp_seal(struct run_record *r)
{
	struct hasher h;
	hasher_init(&h);
	hasher_str(&h, "cashet-fp");
	hasher_u64(&h, FP_VERSION);
	hasher_u64(&h, r->nparts);
	for (size_t i = 0; i < r->nparts; i++) {
		hasher_str(&h, r->parts[i].kind);
		hasher_str(&h, r->parts[i].name);
		hasher_bytes(&h, r->parts[i].hash.b, DIGEST_LEN);
	}
	hasher_final(&h, &r->fp);
}

/* The paths the request names: none empty ("" would be taken for the
 * working directory), no output in the store (a replay would write the
 * store's files over it). */
static int check_paths(struct store *st, const struct fp_spec *spec)
{
	struct strbuf abs = STRBUF_INIT;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < spec->inputs.n; i++)
		if (!*spec->inputs.v[i])
			rc = err_set("an input named by an empty path");
	for (size_t i = 0; rc == 0 && i < spec->outputs.n; i++) {
		const char *o = spec->outputs.v[i];
		path_absolute(spec->cwd, o, &abs);
		if (!*o)
			rc = err_set("an output named by an empty path");
		else if (store_holds(st, abs.buf))
			rc = err_set("output %s: it is the store (%s) or inside it, which is never an output", o,
				     store_dir(st));
	}
	sb_release(&abs);
	return rc;
}

int fp_compute(struct store *st, const struct fp_spec *spec, struct run_record *r)
{
	struct strbuf sb = STRBUF_INIT, name = STRBUF_INIT;
	struct strvec inputs = STRVEC_INIT, envs = STRVEC_INIT, params = STRVEC_INIT, deps = STRVEC_INIT,
		      outputs = STRVEC_INIT, named = STRVEC_INIT;
	struct hasher h;
	struct digest d, argv_d, cwd_d;
	int rc = -1;

	if (check_paths(st, spec) < 0)
		return -1;
	as_set(&spec->inputs, &inputs);
	as_set(&spec->envs, &envs);
	as_set(&spec->params, &params);
	as_set(&spec->deps, &deps);
	for (size_t i = 0; i < spec->outputs.n; i++) {
		fp_store_path(st, spec->cwd, spec->outputs.v[i], &name);
		sv_push(&outputs, name.buf);
	}
	sv_sort(&outputs);

	for (char *const *a = spec->argv; *a; a++)
		sv_push(&r->argv, *a);
	if (!r->argv.n)
		return err_set("no command given");

	argv_d = run_add_argv_part(r)->hash;

	fp_store_path(st, spec->cwd, ".", &sb);
	r->cwd = xstrdup(sb.buf);
	digest_str(r->cwd, &cwd_d);
	run_add_part(r, "cwd", r->cwd, &cwd_d);

	int have_exe = fp_which(r->argv.v[0], spec->cwd, spec->env, &sb) == 0;
	struct script_spec ss = { spec->argv,        spec->cwd, spec->env,   have_exe ? sb.buf : NULL,
				  spec->raw_sources, &deps,     !spec->trace };
	struct script_found found;
	size_t n0 = r->nparts;
	if (script_parts(st, &ss, r, &found) < 0)
		goto out;
	take_env_parts(r, n0, &named);
	if (have_exe && !found.exe_is_script) {
		struct stat s;
		if (stat_memo(sb.buf, &s) == 0 && add_file_part(st, r, "exe", sb.buf, &s) < 0)
			goto out;
		if (add_shim_parts(st, spec, r, sb.buf) < 0)
			goto out;
	} else if (!have_exe) {
		digest_str("(not found)", &d);
		run_add_part(r, "exe", r->argv.v[0], &d);
	}

	/* Arguments naming existing files: their content matters. Declared
	 * outputs are excluded, or a run would change its own key. A traced
	 * run records the files it really reads, and only those: an argument
	 * naming the file it creates is its output, not its input. */
	for (size_t i = 1; !spec->trace && i < r->argv.n; i++) {
		struct stat s;
		const char *a = r->argv.v[i], *eq = a[0] == '-' ? strchr(a, '=') : NULL;
		if (eq) /* --in=data.csv names a file as much as data.csv does */
			a = eq + 1;
		if ((int)i == found.script_arg || !*a)
			continue;
		path_absolute(spec->cwd, a, &sb);
		if (fsrec_do_stat(sb.buf, &s) < 0 || !S_ISREG(s.st_mode))
			continue;
		fp_store_path(st, NULL, sb.buf, &name);
		if (dirscan_is_output(&outputs, name.buf))
			continue;
		if (add_file_part(st, r, "file", sb.buf, &s) < 0)
			goto out;
	}

	for (size_t i = 0; i < inputs.n; i++)
		if (add_input(st, spec, &outputs, r, inputs.v[i]) < 0)
			goto out;

	for (size_t i = 0; i < envs.n; i++) {
		if (has_glob(envs.v[i]))
			add_env_pattern(r, spec->env, envs.v[i]);
		else
			fp_add_env(r, spec->env, envs.v[i]);
	}
	for (size_t i = 0; i < named.n; i++)
		fp_add_env(r, spec->env, named.v[i]);

	for (size_t i = 0; i < params.n; i++)
		if (params_add(st, spec->cwd, r, params.v[i]) < 0)
			goto out;

	if (spec->stdin_digest) {
		run_add_part(r, "stdin", "-", spec->stdin_digest);
	} else if (spec->stdin_fd >= 0) {
		off_t pos = lseek(spec->stdin_fd, 0, SEEK_CUR);
		if (digest_fd(spec->stdin_fd, &d, NULL) < 0)
			goto out;
		if (pos >= 0)
			lseek(spec->stdin_fd, pos, SEEK_SET);
		run_add_part(r, "stdin", "-", &d);
	}
	/* what a later process cannot ask again by stat alone: the
	 * pipeline's witness must not vouch for it */
	if (spec->nfds)
		fsrec_spoil();
	for (size_t i = 0; i < spec->nfds; i++)
		if (add_fd_part(st, r, &spec->fds[i]) < 0)
			goto out;

	for (size_t i = 0; i < outputs.n; i++) {
		if (i && !strcmp(outputs.v[i], outputs.v[i - 1]))
			continue;
		digest_str(outputs.v[i], &d);
		run_add_part(r, "output", outputs.v[i], &d);
	}

	add_ambient(r, spec);
	fp_seal(r);

	hasher_init(&h);
	hasher_str(&h, "cashet-line");
	hasher_bytes(&h, argv_d.b, DIGEST_LEN);
	hasher_bytes(&h, cwd_d.b, DIGEST_LEN);
	hasher_final(&h, &r->line);
	rc = 0;
out:
	sb_release(&sb);
	sb_release(&name);
	sv_release(&inputs);
	sv_release(&envs);
	sv_release(&named);
	sv_release(&params);
	sv_release(&deps);
	sv_release(&outputs);
	return rc;
}
