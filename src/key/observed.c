/* observed: recording (obs_collect) and checking (obs_check) the inputs a
 * traced run depended on. See observed.h for what counts. */
#include "key/observed.h"
#include "util/fsrec.h"
#include "key/canon.h"
#include "key/fp.h"
#include "key/script.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Paths that are never inputs whatever the user says (documented in the
 * man page): kernel interfaces and devices ... */
static const char *const obs_noise[] = { "/proc", "/sys", "/dev", NULL };
/* ... but for the file systems of ordinary files below them: /dev/shm is
 * a tmpfs that scripts, CI jobs and whole projects use as a fast scratch
 * disk, and what a command reads there is an input like any other. */
static const char *const obs_not_noise[] = { "/dev/shm", NULL };
const char *const obs_default_ignore[] = { "__pycache__/*", "*/__pycache__/*", NULL };

/* Symbolic links followed from one path before giving up, as the
 * kernel does (ELOOP). */
#define LINK_HOPS 40

/* Timestamps closer to now than this may not show the next change (the
 * file system's granularity, racy git): such an input is compared by
 * content on every check, like the stat cache does. */
#define RACY_NS 2000000000LL

/* A project file with a code's extension read as data is read for the
 * variables it names up to this size. */
#define CODE_READ_MAX (1 << 20)

static int matches(const char *pattern, const char *path)
{
	return fnmatch(pattern, path, 0) == 0 || path_under(path, pattern);
}

int obs_ignored(const struct strvec *patterns, const char *path)
{
	for (size_t i = 0; patterns && i < patterns->n; i++)
		if (matches(patterns->v[i], path))
			return 1;
	for (const char *const *p = obs_default_ignore; *p; p++)
		if (matches(*p, path))
			return 1;
	return 0;
}

static int is_noise(const struct store *st, const char *abs)
{
	if (path_under(abs, store_key_dir(st)))
		return 1;
	for (const char *const *p = obs_not_noise; *p; p++)
		if (path_under(abs, *p))
			return 0;
	for (const char *const *p = obs_noise; *p; p++)
		if (path_under(abs, *p))
			return 1;
	return 0;
}

/* The names in a directory, sorted, hashed: adding, removing or renaming
 * an entry changes it; changing a file's content does not (that file is
 * an input of its own when it was read). */
static int listing_digest(const char *abs, struct digest *d)
{
	struct strvec names = STRVEC_INIT;
	if (dir_names(abs, &names) < 0)
		return err_sys("cannot list %s", abs);
	struct hasher h;
	hasher_init(&h);
	hasher_str(&h, "cashet-listing");
	hasher_u64(&h, names.n);
	for (size_t i = 0; i < names.n; i++)
		hasher_str(&h, names.v[i]);
	hasher_final(&h, d);
	sv_release(&names);
	return 0;
}

/* env (may be NULL): the environment variables a source names. */
static int digest_of_kind(struct store *st, char kind, const char *abs, const struct stat *sb, struct digest *d,
			  struct strvec *env)
{
	int rc;
	switch (kind) {
	case INPUT_FILE:
	case INPUT_SOURCE:
	case INPUT_SOURCE_DOCS: /* an older store's: docstrings are kept always now */
		rc = kind == INPUT_FILE ? store_file_digest(st, abs, sb, d)
					: script_source_digest(st, abs, sb, 0, d, env);
		/* `[ -x hook ]`, shutil.which(): the bit is part of what was looked at */
		if (rc == 0)
			fp_mode_digest(d, sb->st_mode);
		return rc;
	case INPUT_LISTED:
		return listing_digest(abs, d);
	default:
		memset(d, 0, sizeof(*d));
		return 0;
	}
}

static void set_sig(struct run_input *in, const struct stat *sb, int64_t now)
{
	int64_t m = ts_ns(&sb->st_mtim), c = ts_ns(&sb->st_ctim);
	if (now - m < RACY_NS || now - c < RACY_NS)
		return; /* zero: compared by content */
	in->size = (int64_t)sb->st_size;
	in->mtime_ns = m;
	in->ctime_ns = c;
	in->ino = (uint64_t)sb->st_ino;
}

static int sig_same(const struct run_input *in, const struct stat *sb)
{
	return in->ctime_ns && in->size == (int64_t)sb->st_size && in->mtime_ns == ts_ns(&sb->st_mtim) &&
	       in->ctime_ns == ts_ns(&sb->st_ctim) && in->ino == (uint64_t)sb->st_ino;
}

static int cmp_input(const void *a, const void *b)
{
	return strcmp(((const struct run_input *)a)->path, ((const struct run_input *)b)->path);
}

/* The digest prev recorded for the same path and kind under the same
 * signature: 1 (d filled), 0 none. */
static int reuse_digest(const struct run_record *prev, const char *name, char kind, const struct stat *sb,
			struct digest *d)
{
	if (!prev || !prev->ninputs)
		return 0;
	struct run_input key = { .path = (char *)name };
	const struct run_input *in = bsearch(&key, prev->inputs, prev->ninputs, sizeof(*prev->inputs), cmp_input);
	if (!in || in->kind != kind || !sig_same(in, sb))
		return 0;
	*d = in->d;
	return 1;
}

/* Python's standard library: a file under a lib/pythonX.Y directory
 * (lib64 too; any prefix: /usr, a pyenv, a conda environment) but not in
 * its site-packages or dist-packages. */
static int python_stdlib(const char *path)
{
	for (const char *p = strstr(path, "/python"); p; p = strstr(p + 1, "/python")) {
		if (!(p - path >= 4 && !strncmp(p - 4, "/lib", 4)) && !(p - path >= 6 && !strncmp(p - 6, "/lib64", 6)))
			continue;
		const char *v = p + strlen("/python");
		size_t major = strspn(v, "0123456789");
		if (!major || v[major] != '.')
			continue; /* lib/python3/dist-packages (Debian's) is no version's */
		size_t minor = strspn(v + major + 1, "0123456789");
		if (!minor || v[major + 1 + minor] != '/')
			continue;
		const char *rest = v + major + 1 + minor + 1;
		return strncmp(rest, "site-packages/", 14) && strncmp(rest, "dist-packages/", 14);
	}
	return 0;
}

/* 1 if path or a directory above it is in the sorted set (a file inside a
 * directory the command made or moved into place is its own too). */
static int in_tree_of(const struct strvec *set, const char *path)
{
	if (!set->n)
		return 0;
	struct strbuf p = STRBUF_INIT;
	sb_adds(&p, path);
	int found = 0;
	for (;;) {
		if (sv_sorted_has(set, p.buf)) {
			found = 1;
			break;
		}
		char *slash = strrchr(p.buf, '/');
		if (!slash || slash == p.buf)
			break;
		sb_setlen(&p, (size_t)(slash - p.buf));
	}
	sb_release(&p);
	return found;
}

/* 1 if the tree made or removed an entry right inside directory dir: its
 * timestamps then moved because of the command itself. */
static int wrote_inside(const struct strvec *written, const char *dir)
{
	size_t n = strlen(dir);
	int root = !strcmp(dir, ".");
	for (size_t i = 0; i < written->n; i++) {
		const char *w = written->v[i];
		if (root ? !strchr(w, '/') : !strncmp(w, dir, n) && w[n] == '/' && !strchr(w + n + 1, '/'))
			return 1;
	}
	return 0;
}

/* Names the command's declaration covers, for --strict: parts naming
 * files and directories (declared inputs, scripts and what they load), and
 * paths its arguments name (alone or after "--opt="). */
static int declared(const struct strvec *args, const struct run_record *r, const char *name)
{
	for (size_t i = 0; i < args->n; i++)
		if (path_under(name, args->v[i]))
			return 1;
	return obs_part_covers(r, name);
}

/* The command's arguments (the value of an --opt=value) as paths, as
 * declared() compares them: made once, not once an input (20,000). */
static void arg_paths(struct store *st, const char *cwd, const struct run_record *r, struct strvec *out)
{
	struct strbuf arg = STRBUF_INIT;
	for (size_t i = 1; i < r->argv.n; i++) {
		const char *a = r->argv.v[i], *eq = a[0] == '-' ? strchr(a, '=') : NULL;
		if (!*a)
			continue;
		fp_store_path(st, cwd, eq ? eq + 1 : a, &arg);
		sv_push(out, arg.buf);
	}
	sb_release(&arg);
}

int obs_part_covers(const struct run_record *r, const char *path)
{
	static const char *const kinds[] = { "file", "input", "dir", "glob",   "script", "source",
					     "dep",  "param", "exe", "interp", NULL };
	for (size_t i = 0; i < r->nparts; i++)
		for (const char *const *k = kinds; *k; k++)
			if (!strcmp(r->parts[i].kind, *k) && path_under(path, r->parts[i].name))
				return 1;
	return 0;
}

/* A symbolic link's part: its target as text. `readlink`, `realpath` and
 * `ls -l` print it, and a link moved to an equal file changes no content. */
static void link_digest(const char *text, struct digest *d)
{
	struct hasher h;
	hasher_init(&h);
	hasher_str(&h, "cashet-link");
	hasher_str(&h, text);
	hasher_final(&h, d);
}

/* path with its ".." taken as the kernel takes them: after a symbolic
 * link, "sub/../f" names the file beside the link's target, not the f
 * beside sub that dropping "sub/.." as text would give. The links before
 * the last ".." are inputs of r (if not NULL): another target, another
 * file. */
static void physical_path(const struct store *st, struct run_record *r, const char *path, struct strbuf *out)
{
	const char *last = NULL;
	for (const char *p = strstr(path, "/.."); p; p = strstr(p + 1, "/.."))
		if (p[3] == '/' || !p[3])
			last = p + 3;
	sb_reset(out);
	char *real = NULL;
	if (last) {
		struct strbuf text = STRBUF_INIT, name = STRBUF_INIT;
		struct stat sb;
		sb_add(out, path, (size_t)(last - path));
		for (char *slash = strchr(out->buf + 1, '/'); r && slash; slash = strchr(slash + 1, '/')) {
			*slash = '\0';
			if (!is_noise(st, out->buf) && lstat(out->buf, &sb) == 0 && S_ISLNK(sb.st_mode) &&
			    read_link(out->buf, &text) == 0) {
				fp_store_path(st, NULL, out->buf, &name);
				link_digest(text.buf, &run_add_input(r, INPUT_LINK, name.buf)->d);
			}
			err_clear();
			*slash = '/';
		}
		real = realpath(out->buf, NULL);
		sb_reset(out);
		sb_release(&text);
		sb_release(&name);
	}
	if (!real) {
		sb_adds(out, path);
		return;
	}
	sb_adds(out, strcmp(real, "/") || !*last ? real : "");
	sb_adds(out, last);
	free(real);
}

/* The link at path (named name) is an input; path becomes what it names,
 * as opening it goes on to. -1 if it cannot be read. */
static int follow_link(const struct store *st, struct run_record *r, const char *name, struct strbuf *path,
		       const struct stat *sb, int64_t started_ns, struct obs_outcome *out)
{
	struct strbuf text = STRBUF_INIT, next = STRBUF_INIT;
	int rc = -1;
	if (read_link(path->buf, &text) < 0) {
		err_clear();
		goto out;
	}
	link_digest(text.buf, &run_add_input(r, INPUT_LINK, name)->d);
	if (fs_changed_since(sb, started_ns))
		sv_push(&out->changed, name);
	if (text.buf[0] != '/') {
		const char *slash = strrchr(path->buf, '/');
		sb_add(&next, path->buf, slash ? (size_t)(slash - path->buf) : 0);
		sb_addc(&next, '/');
	}
	sb_adds(&next, text.buf);
	physical_path(st, r, next.buf, &text);
	path_absolute("/", text.buf, path); /* "a/./b", "a//b"; a ".." left names nothing yet */
	rc = 0;
out:
	sb_release(&text);
	sb_release(&next);
	return rc;
}

/* The Python sources the run imported: those whose bytecode cache
 * (__pycache__/NAME.*.pyc) it looked for, read or wrote, as the import
 * system does for every module it loads from source. sorted. */
static void python_compiled(const struct trace_event *ev, size_t n, struct strvec *out)
{
	static const char cache[] = "/__pycache__/";
	struct strbuf p = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const char *c = strstr(ev[i].path, cache), *file = c ? c + sizeof(cache) - 1 : NULL;
		if (!c || strchr(file, '/') || !strchr(file, '.'))
			continue;
		sb_reset(&p);
		sb_add(&p, ev[i].path, (size_t)(c - ev[i].path) + 1);
		sb_add(&p, file, (size_t)(strchr(file, '.') - file));
		sb_adds(&p, ".py");
		sv_push(out, p.buf);
	}
	sv_sort(out);
	sb_release(&p);
}

/* Whether a Python or shell source the run read was run as code, and so
 * counts in its canonical form (comments left out): a script or source
 * its command line names, or a module it imported. Read as data (`cat`,
 * `md5sum`, a linter, open().read()), every byte counts. */
static int run_as_code(const struct run_record *r, const struct strvec *compiled, const char *name, const char *abs)
{
	for (size_t i = 0; i < r->nparts; i++)
		if ((!strcmp(r->parts[i].kind, "script") || !strcmp(r->parts[i].kind, "source")) &&
		    !strcmp(r->parts[i].name, name))
			return 1;
	return sv_sorted_has(compiled, abs);
}

/* Variables that name where programs look for their files. What a run
 * read there is traced by path, but the same program run with another
 * value reads another file (git with another HOME, another
 * ~/.config/git/config): such a variable is an input as soon as the run
 * touched something under it (locations_read), and what counts is
 * the place it names: unset, the place it stands for (after the value of
 * the variable base, if any), so that TMPDIR=/tmp is the same as none. */
static const struct location {
	const char *var, *base, *fallback;
} locations[] = {
	{ "HOME", NULL, NULL },
	{ "TMPDIR", NULL, "/tmp" },
	{ "XDG_CONFIG_HOME", "HOME", "/.config" },
	{ "XDG_CACHE_HOME", "HOME", "/.cache" },
	{ "XDG_DATA_HOME", "HOME", "/.local/share" },
	{ "XDG_STATE_HOME", "HOME", "/.local/state" },
	{ "XDG_RUNTIME_DIR", NULL, NULL },
};

static const struct location *location_of(const char *var)
{
	for (size_t l = 0; l < sizeof(locations) / sizeof(*locations); l++)
		if (!strcmp(locations[l].var, var))
			return &locations[l];
	return NULL;
}

/* The directory loc names in env, without a trailing slash; empty if none. */
static void location_dir(char *const *env, const struct location *loc, struct strbuf *dir)
{
	const char *v = fp_getenv(env, loc->var);
	sb_reset(dir);
	if (v && *v)
		sb_adds(dir, v);
	else if (loc->fallback && (!loc->base || ((v = fp_getenv(env, loc->base)) && *v)))
		sb_addf(dir, "%s%s", loc->base ? v : "", loc->fallback);
	while (dir->len > 1 && dir->buf[dir->len - 1] == '/')
		sb_setlen(dir, dir->len - 1);
}

/* The digest of "PATH:NAME": the file a search of PATH for NAME finds
 * (its real path), or none. */
static void which_digest(char *const *env, const char *name, struct digest *d)
{
	struct strbuf exe = STRBUF_INIT;
	struct hasher h;
	char *real = fp_which(name, NULL, env, &exe) == 0 ? realpath(exe.buf, NULL) : NULL;
	hasher_init(&h);
	hasher_str(&h, "cashet-which");
	hasher_str(&h, real ? real : "");
	hasher_final(&h, d);
	free(real);
	sb_release(&exe);
}

/* An INPUT_ENV's digest: the value, for a location the place, for
 * "PATH:NAME" what PATH finds. */
static void env_digest(char *const *env, const char *var, struct digest *d)
{
	const struct location *loc = location_of(var);
	if (!strncmp(var, "PATH:", 5)) {
		which_digest(env, var + 5, d);
		return;
	}
	if (!loc) {
		fp_env_digest(env, var, d);
		return;
	}
	struct strbuf dir = STRBUF_INIT;
	struct hasher h;
	location_dir(env, loc, &dir);
	hasher_init(&h);
	hasher_str(&h, "cashet-location");
	hasher_str(&h, dir.buf ? dir.buf : "");
	hasher_final(&h, d);
	sb_release(&dir);
}

/* The locations the run touched something under, appended to env. A
 * location itself counts only listed: a stat of /tmp on the way to a
 * project in it says nothing of TMPDIR; nor do the files of a project in
 * it, but a HOME inside the project is a place like any other. */
static void locations_read(const struct store *st, const struct obs_spec *spec, const struct trace_event *ev, size_t n,
			   struct strvec *env)
{
	struct strbuf dir = STRBUF_INIT;
	for (size_t l = 0; l < sizeof(locations) / sizeof(*locations); l++) {
		location_dir(spec->env, &locations[l], &dir);
		/* "/" would take in every path */
		if (dir.len < 2 || dir.buf[0] != '/')
			continue;
		/* a project in the place (in HOME): its own files say nothing of it */
		int holds_project = path_under(store_root(st), dir.buf);
		for (size_t i = 0; i < n; i++) {
			const char *p = ev[i].path;
			if (!(ev[i].access & TRACE_ENV) && path_under(p, dir.buf) &&
			    (p[dir.len] || (ev[i].access & TRACE_LIST)) &&
			    !(holds_project && path_under(p, store_root(st)))) {
				sv_push(env, locations[l].var);
				break;
			}
		}
	}
	sb_release(&dir);
}

/* Each program the tree started or tried from a directory of its PATH (a
 * shell's or execvp's search), as "PATH:NAME", appended to env. The
 * search stops where it finds NAME, so a directory put first since (a venv
 * activated) is nowhere in what it read: a PATH that now finds another
 * NAME must miss. PATH itself is not hashed: a change that finds the same
 * programs is no change; nor is a program started by its path (./tool). */
static void programs_run(const struct obs_spec *spec, const struct trace_event *ev, size_t n, struct strvec *env)
{
	struct strvec dirs = STRVEC_INIT, names = STRVEC_INIT;
	struct strbuf d = STRBUF_INIT;
	const char *path = fp_getenv(spec->env, "PATH");
	while (path && *path) {
		const char *e = strchrnul(path, ':');
		sb_reset(&d);
		sb_add(&d, path, (size_t)(e - path));
		struct strbuf abs = STRBUF_INIT;
		path_absolute(spec->cwd, d.len ? d.buf : ".", &abs);
		sv_push(&dirs, abs.buf);
		sb_release(&abs);
		path = *e ? e + 1 : e;
	}
	sv_sort(&dirs);
	for (size_t i = 0; dirs.n && i < n; i++) {
		const char *base = strrchr(ev[i].path, '/');
		if (!(ev[i].access & TRACE_EXEC) || (ev[i].access & TRACE_ENV) || !base || !base[1])
			continue;
		sb_reset(&d);
		sb_add(&d, ev[i].path, (size_t)(base - ev[i].path));
		struct strbuf dir = STRBUF_INIT;
		path_absolute("/", d.len ? d.buf : "/", &dir);
		if (sv_sorted_has(&dirs, dir.buf))
			sv_push(&names, base + 1);
		sb_release(&dir);
	}
	sv_release(&dirs);
	sb_release(&d);
	sv_sort(&names);
	for (size_t i = 0; i < names.n; i++)
		if (!i || strcmp(names.v[i], names.v[i - 1])) {
			struct strbuf var = STRBUF_INIT;
			sb_addf(&var, "PATH:%s", names.v[i]);
			sv_push(env, var.buf);
			sb_release(&var);
		}
	sv_release(&names);
}

/* path (absolute, outside the project) as reached from root ("../lib/x"),
 * into out: 1, or 0 when the two share no directory but "/". */
static int from_root(const char *root, const char *path, struct strbuf *out)
{
	size_t common = 0;
	for (size_t i = 1;; i++) {
		int end_r = !root[i] || root[i] == '/', end_p = !path[i] || path[i] == '/';
		if (end_r && end_p)
			common = i;
		if (!root[i] || !path[i] || root[i] != path[i] || end_r != end_p)
			break;
	}
	if (!common)
		return 0;
	sb_reset(out);
	for (const char *c = root + common; *c; c++)
		if (*c == '/')
			sb_adds(out, out->len ? "/.." : "..");
	if (path[common])
		sb_addf(out, "%s%s", out->len ? "" : ".", path + common);
	else if (!out->len)
		sb_addc(out, '.');
	return 1;
}

/* A file outside the project but near it (a sibling, a monorepo's
 * ../lib) is recorded twice: where it is, and as the project reaches it.
 * A command names it either way (`cat ../sib.txt`, a hard-coded path), so
 * a project moved, imported or pulled elsewhere replays only when both
 * are as they were. */
static void near_inputs(const struct store *st, struct run_record *r)
{
	struct strbuf rel = STRBUF_INIT;
	const char *root = store_root(st);
	size_t n = r->ninputs;
	for (size_t i = 0; strcmp(root, "/") && i < n; i++) {
		if (r->inputs[i].kind == INPUT_ENV || r->inputs[i].path[0] != '/' ||
		    !from_root(root, r->inputs[i].path, &rel))
			continue;
		struct run_input *twin = run_add_input(r, r->inputs[i].kind, rel.buf);
		char *path = twin->path;
		*twin = r->inputs[i];
		twin->path = path;
	}
	sb_release(&rel);
}

/* Plain files the stat cache did not know, hashed after the walk on every
 * CPU: a `cp -r` of 20,000 files reads each of them again. */
struct to_hash {
	size_t input; /* in r->inputs */
	char *path;
	struct stat sb;
	struct digest d;
	int failed;
};

static void hash_one(void *arg, size_t i, struct diropen *dirs)
{
	struct to_hash *h = (struct to_hash *)arg + i;
	/* the error is said again, on this thread, below */
	h->failed = digest_file_stat_in(dirs, h->path, &h->sb, &h->d) < 0;
	if (h->failed)
		err_clear();
}

static int hash_files(struct store *st, struct to_hash *h, size_t n, struct run_record *r)
{
	parallel_for(n, 64, hash_one, h);
	for (size_t i = 0; i < n; i++) {
		if (h[i].failed && digest_file_stat(h[i].path, &h[i].sb, &h[i].d) < 0)
			return -1;
		store_cache_put(st, h[i].path, 0, &h[i].sb, &h[i].d, NULL, 0);
		fp_mode_digest(&h[i].d, h[i].sb.st_mode);
		r->inputs[h[i].input].d = h[i].d;
	}
	return 0;
}

/* The lstat of each event's path that the walk over the events below will
 * want, taken beforehand on every CPU: a third of that walk, for a `cp -r`
 * of 20,000 files. path NULL: not taken. */
struct prestat {
	const char *path;
	struct stat sb;
	int err; /* lstat's errno, or 0 */
};

static void prestat_one(void *arg, size_t i, struct diropen *dirs)
{
	struct prestat *p = (struct prestat *)arg + i;
	if (p->path)
		p->err = diropen_lstat(dirs, p->path, &p->sb) < 0 ? errno : 0;
}

int obs_collect(struct store *st, const struct obs_spec *spec, const struct trace_event *ev, size_t n,
		struct run_record *r, struct obs_outcome *out)
{
	struct strvec written = STRVEC_INIT, outputs = STRVEC_INIT, env = STRVEC_INIT, compiled = STRVEC_INIT;
	struct strvec lib = STRVEC_INIT; /* one source's names */
	struct strvec args = STRVEC_INIT;
	struct strbuf name = STRBUF_INIT, path = STRBUF_INIT;
	struct to_hash *todo = NULL;
	struct prestat *pre = NULL;
	size_t ntodo = 0, todo_cap = 0;
	int64_t now = now_ns();
	int rc = -1;

	for (size_t i = 0; spec->outputs && i < spec->outputs->n; i++) {
		fp_store_path(st, spec->cwd, spec->outputs->v[i], &name);
		sv_push(&outputs, name.buf);
	}
	sv_sort(&outputs);
	arg_paths(st, spec->cwd, r, &args);
	/* first what the tree made or removed: not inputs, nor what is inside */
	for (size_t i = 0; i < n; i++)
		if (ev[i].access & (TRACE_WRITE | TRACE_REMOVE)) {
			fp_store_path(st, NULL, ev[i].path, &name);
			sv_push(&written, name.buf);
		}
	sv_sort(&written);
	python_compiled(ev, n, &compiled);
	/* what the tree wrote or removed, variables and noise need none */
	pre = xcalloc(n ? n : 1, sizeof(*pre));
	for (size_t i = 0; i < n; i++)
		if (!(ev[i].access & (TRACE_ENV | TRACE_WRITE | TRACE_REMOVE)) && !is_noise(st, ev[i].path))
			pre[i].path = ev[i].path;
	parallel_for(n, 256, prestat_one, pre);

	r->observed = OBSERVED_TRACED;
	for (size_t i = 0; i < n; i++) {
		struct stat sb;
		if (ev[i].access & TRACE_ENV) {
			if (!canon_env_ambient(ev[i].path + 1))
				sv_push(&env, ev[i].path + 1);
			continue;
		}
		physical_path(st, r, ev[i].path, &path);
		/* the path, and each symbolic link on the way to what it names */
		for (int hops = 0;; hops++) {
			if (is_noise(st, path.buf))
				goto next;
			fp_store_path(st, NULL, path.buf, &name);
			if (in_tree_of(&outputs, name.buf)) {
				/* a declared output file found in place and read
				 * first: its content then made the result. Never
				 * written (a --metrics file the command only reads),
				 * it is an input as well; rewritten (sed -i), what it
				 * held is gone and the result cannot be keyed */
				int read_first = !hops && spec->found_outputs && (ev[i].first & TRACE_READ) &&
						 !(ev[i].first & TRACE_WRITE) &&
						 sv_sorted_has(spec->found_outputs, name.buf);
				if (!read_first)
					goto next;
				if (ev[i].access & (TRACE_WRITE | TRACE_REMOVE)) {
					sv_push(&out->read_outputs, name.buf);
					goto next;
				}
			} else if (obs_ignored(spec->ignore, name.buf))
				goto next;
			if (in_tree_of(&written, name.buf)) {
				/* with -o . every file it wrote in the project is declared;
				 * what it read there stays an input all the same */
				if ((ev[i].access & TRACE_WRITE) && !hops && name.buf[0] != '/' &&
				    !sv_sorted_has(&outputs, ".") && stat(path.buf, &sb) == 0 && S_ISREG(sb.st_mode))
					sv_push(&out->written, name.buf);
				goto next;
			}
			int err;
			if (!hops && pre[i].path && !strcmp(path.buf, pre[i].path)) {
				sb = pre[i].sb;
				err = pre[i].err;
			} else {
				err = lstat(path.buf, &sb) < 0 ? errno : 0;
			}
			if (err) {
				if (err == ENOENT || err == ENOTDIR)
					run_add_input(r, INPUT_ABSENT, name.buf);
				goto next; /* EACCES and the like: the command could not see it either */
			}
			if (!S_ISLNK(sb.st_mode))
				break;
			if (hops == LINK_HOPS || follow_link(st, r, name.buf, &path, &sb, spec->started_ns, out) < 0)
				goto next; /* ELOOP for the command too */
		}
		char kind;
		if (S_ISDIR(sb.st_mode))
			kind = (ev[i].access & TRACE_LIST) ? INPUT_LISTED : INPUT_DIR;
		else if (S_ISREG(sb.st_mode))
			kind = !spec->raw_sources && canon_detect(name.buf, NULL, 0) != CANON_RAW &&
					       run_as_code(r, &compiled, name.buf, path.buf)
				       ? INPUT_SOURCE
				       : INPUT_FILE;
		else
			continue; /* pipes, sockets, devices outside /dev: no content to compare */
		if (kind != INPUT_DIR && fs_changed_since(&sb, spec->started_ns) &&
		    !(kind == INPUT_LISTED && wrote_inside(&written, name.buf)))
			sv_push(&out->changed, name.buf);
		struct run_input *in = run_add_input(r, kind, name.buf);
		/* the environment variables the sources it ran name: the
		 * project's, a library's (site-packages, a PYTHONPATH), not the
		 * standard library's (TMPDIR, COLUMNS, HOME...); asked of the
		 * stat cache even when the digest is reused */
		struct strvec *names = kind == INPUT_SOURCE && !python_stdlib(name.buf) ? &env : NULL;
		/* and the project's code it read some other way (`. "./$f"`, a
		 * Perl or Node module, a script a tool reads): perhaps run, so
		 * its names count too; up to a size (more is data) */
		if (kind == INPUT_FILE && name.buf[0] != '/' && (ev[i].access & TRACE_READ) &&
		    sb.st_size <= CODE_READ_MAX && canon_is_code_name(name.buf)) {
			struct digest canon;
			if (script_source_digest(st, path.buf, &sb, 0, &canon, &env) < 0)
				goto out;
		}
		int reused = reuse_digest(spec->prev, name.buf, kind, &sb, &in->d);
		if (!reused && kind == INPUT_FILE) {
			/* hashed while it ran: not even a stat-cache query (one
			 * each was 60 ms of a `cp -r` of 20,000 files) */
			int cached = spec->known && spec->known(spec->known_ctx, path.buf, &sb, &in->d);
			if (cached) {
				store_cache_put(st, path.buf, 0, &sb, &in->d, NULL, 0);
				out->hashed_during++;
			} else if ((cached = store_cache_get(st, path.buf, 0, &sb, &in->d, NULL)) < 0)
				goto out;
			if (cached)
				fp_mode_digest(&in->d, sb.st_mode);
			else {
				if (ntodo == todo_cap) {
					todo_cap = todo_cap ? 2 * todo_cap : 64;
					todo = xrealloc(todo, todo_cap * sizeof(*todo));
				}
				todo[ntodo++] = (struct to_hash){ .input = (size_t)(in - r->inputs),
								  .path = xstrdup(path.buf),
								  .sb = sb };
			}
		} else if ((!reused || names) &&
			   digest_of_kind(st, kind, path.buf, &sb, &in->d, names ? &lib : NULL) < 0)
			goto out;
		/* a library's reads of names it is given (os.environ.get(key))
		 * would tie every run that imports it to the whole environment:
		 * left out, as the standard library's names are */
		for (size_t k = 0; k < lib.n; k++)
			if (name.buf[0] != '/' || !strchr(lib.v[k], '*'))
				sv_push(&env, lib.v[k]);
		sv_release(&lib);
		set_sig(in, &sb, now);
		if (name.buf[0] != '/' && kind != INPUT_ABSENT && kind != INPUT_LISTED && kind != INPUT_DIR &&
		    !declared(&args, r, name.buf) && !in_tree_of(&outputs, name.buf))
			sv_push(&out->undeclared, name.buf);
	next:;
	}
	if (hash_files(st, todo, ntodo, r) < 0)
		goto out;
	out->hashed_after = ntodo;
	locations_read(st, spec, ev, n, &env);
	programs_run(spec, ev, n, &env);
	for (size_t i = 0; i < env.n; i++) {
		sb_reset(&name);
		sb_addf(&name, "$%s", env.v[i]);
		/* --ignore '$PATH' leaves out its lookups too */
		if (obs_ignored(spec->ignore, name.buf) ||
		    (!strncmp(env.v[i], "PATH:", 5) && obs_ignored(spec->ignore, "$PATH")) ||
		    fp_has_part(r, "env", env.v[i]))
			continue; /* -e, or named by the command's own code: said once, as that part */
		env_digest(spec->env, env.v[i], &run_add_input(r, INPUT_ENV, name.buf)->d);
	}
	near_inputs(st, r);
	/* one entry per path: two spellings ("a/./b", "a/b") fold to one name */
	qsort(r->inputs, r->ninputs, sizeof(*r->inputs), cmp_input);
	size_t k = 0;
	for (size_t i = 0; i < r->ninputs; i++) {
		if (k && !strcmp(r->inputs[k - 1].path, r->inputs[i].path)) {
			free(r->inputs[i].path);
			continue;
		}
		r->inputs[k++] = r->inputs[i];
	}
	r->ninputs = k;
	sv_sort(&out->written);
	sv_sort(&out->read_outputs);
	sv_sort(&out->undeclared);
	sv_sort(&out->changed);
	rc = 0;
out:
	for (size_t i = 0; i < ntodo; i++)
		free(todo[i].path);
	free(todo);
	free(pre);
	sv_release(&written);
	sv_release(&outputs);
	sv_release(&args);
	sv_release(&env);
	sv_release(&lib);
	sv_release(&compiled);
	sb_release(&name);
	sb_release(&path);
	return rc;
}

/* The declared file parts of r, stat()ed: fn(name, sb or NULL when it is
 * gone, ctx) for each. */
static void declared_stat(const struct store *st, const struct run_record *r,
			  void (*fn)(const char *name, const struct stat *sb, void *ctx), void *ctx)
{
	static const char *const kinds[] = { "file", "input", "script", "source", "dep", NULL };
	struct strbuf abs = STRBUF_INIT;
	const char *root = store_root(st);
	for (size_t i = 0; i < r->nparts; i++) {
		const struct run_part *p = &r->parts[i];
		const char *const *k = kinds;
		while (*k && strcmp(*k, p->kind))
			k++;
		if (!*k)
			continue;
		struct stat sb;
		sb_reset(&abs);
		if (p->name[0] != '/')
			sb_addf(&abs, "%s%s", root, strcmp(root, "/") ? "/" : "");
		sb_adds(&abs, p->name);
		fn(p->name, stat(abs.buf, &sb) == 0 ? &sb : NULL, ctx);
	}
	sb_release(&abs);
}

struct since {
	int64_t t;
	struct strvec *changed;
};

static void push_changed(const char *name, const struct stat *sb, void *ctx)
{
	struct since *s = ctx;
	if (!sb || fs_changed_since(sb, s->t))
		sv_push(s->changed, name);
}

void obs_declared_changed(const struct store *st, const struct run_record *r, int64_t started_ns,
			  struct strvec *changed)
{
	struct since s = { started_ns, changed };
	declared_stat(st, r, push_changed, &s);
}

static void keep_newest(const char *name, const struct stat *sb, void *ctx)
{
	(void)name;
	int64_t *newest = ctx;
	if (sb && ts_ns(&sb->st_ctim) > *newest)
		*newest = ts_ns(&sb->st_ctim);
}

int64_t obs_declared_newest(const struct store *st, const struct run_record *r)
{
	int64_t newest = 0;
	declared_stat(st, r, keep_newest, &newest);
	return newest;
}

void obs_outcome_release(struct obs_outcome *o)
{
	sv_release(&o->changed);
	sv_release(&o->written);
	sv_release(&o->read_outputs);
	sv_release(&o->undeclared);
}

/* One input against the file system: 1 as it was, 0 not (why filled). */
static int check_one(struct store *st, struct run_input *in, const char *abs, char *const *env, int64_t now,
		     int *refreshed, struct strbuf *why)
{
	struct stat sb;
	struct digest d;
	const char *what = NULL;
	if (in->kind == INPUT_ENV) {
		env_digest(env, in->path + 1, &d);
		if (!memcmp(d.b, in->d.b, DIGEST_LEN))
			return 1;
		if (why) {
			sb_reset(why);
			if (!strncmp(in->path + 1, "PATH:", 5))
				sb_addf(why, "env PATH now finds another %s, a program the command ran", in->path + 6);
			else
				sb_addf(why,
					location_of(in->path + 1) ? "env %s, where the command read files, changed"
								  : "env %s, read by the command, changed",
					in->path + 1);
		}
		return 0;
	}
	if (in->kind == INPUT_LINK) {
		struct strbuf text = STRBUF_INIT;
		int same = read_link(abs, &text) == 0;
		err_clear();
		if (same) {
			link_digest(text.buf, &d);
			same = !memcmp(d.b, in->d.b, DIGEST_LEN);
		}
		sb_release(&text);
		if (same)
			return 1;
		if (why) {
			sb_reset(why);
			sb_addf(why, "%s, a symbolic link the command looked at, points elsewhere or is gone",
				in->path);
		}
		return 0;
	}
	/* a directory or an absence is asked only what it is */
	int kind_only = in->kind == INPUT_DIR || in->kind == INPUT_ABSENT;
	if ((kind_only ? fsrec_stat_kind(abs, &sb) : stat_memo(abs, &sb)) < 0) {
		if (in->kind == INPUT_ABSENT && (errno == ENOENT || errno == ENOTDIR))
			return 1;
		what = in->kind == INPUT_ABSENT ? "cannot be checked" : "no longer exists";
	} else {
		switch (in->kind) {
		case INPUT_ABSENT:
			what = "now exists where the command looked for it";
			break;
		case INPUT_DIR:
			if (!S_ISDIR(sb.st_mode))
				what = "is no longer a directory";
			break;
		case INPUT_LISTED:
		case INPUT_FILE:
		case INPUT_SOURCE:
		case INPUT_SOURCE_DOCS:
			if (in->kind == INPUT_LISTED ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode)) {
				what = "is no longer what the command read";
				break;
			}
			if (sig_same(in, &sb))
				return 1;
			if (digest_of_kind(st, in->kind, abs, &sb, &d, NULL) < 0)
				return -1;
			if (memcmp(d.b, in->d.b, DIGEST_LEN)) {
				what = in->kind == INPUT_LISTED ? "listed by the command, has other entries"
								: "read by the command, changed";
			} else {
				/* the same content under a new signature (a fresh
				 * clone, a touch, a file now old enough to trust) */
				set_sig(in, &sb, now);
				*refreshed |= in->ctime_ns != 0;
			}
			break;
		default:
			what = "is recorded in a form this cashet does not know";
		}
	}
	if (!what)
		return 1;
	if (why) {
		sb_reset(why);
		sb_addf(why, "%s%s %s", in->path, what[0] == 'l' || what[0] == 'r' ? "," : "", what);
	}
	return 0;
}

int obs_check(struct store *st, struct run_record *r, char *const *env, struct strbuf *why)
{
	int64_t now = now_ns();
	struct strbuf abs = STRBUF_INIT;
	const char *root = store_root(st);
	int rc = 1;
	if (r->observed == OBSERVED_BROKEN) {
		if (why) {
			sb_reset(why);
			sb_adds(why, "its observed inputs cannot be read from the index (cashet fsck rebuilds it)");
		}
		return 0;
	}
	for (size_t i = 0; rc == 1 && i < r->ninputs; i++) {
		struct run_input *in = &r->inputs[i];
		sb_reset(&abs);
		if (in->path[0] != '/')
			sb_addf(&abs, "%s%s", root, strcmp(root, "/") ? "/" : "");
		sb_adds(&abs, in->path);
		rc = check_one(st, in, abs.buf, env, now, &r->inputs_refreshed, why);
	}
	sb_release(&abs);
	return rc;
}

int obs_accept(void *ctx, struct run_record *r)
{
	struct obs_match *m = ctx;
	struct strbuf *why = m->tried++ ? NULL : &m->why;
	switch (r->observed) {
	case OBSERVED_NONE:
		return 1;
	case OBSERVED_BLIND:
		/* its inputs are what reading its scripts found */
		if (!trace_available()) {
			err_clear();
			return obs_check(m->st, r, m->env ? m->env : environ, why);
		}
		if (why)
			sb_adds(why, "its run could not be traced, and tracing works here");
		return 0;
	default:
		return obs_check(m->st, r, m->env ? m->env : environ, why);
	}
}
