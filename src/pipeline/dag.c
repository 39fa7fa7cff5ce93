/* dag: loading a pipeline file into a graph of steps (see dag.h).
 * The work is done in passes so that every reference can be resolved:
 * expand sweeps, substitute outputs (which may not name other steps), then
 * everything else (which may: ${steps.X.outputs}), then edges and checks.
 * Paths are compared lexically, normalized relative to the file's directory. */
#include "pipeline/dag.h"
#include "util/toml.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const step_keys[] = {
	"cmd",   "inputs",  "outputs", "env",   "params",       "deps",    "timeout",    "retries", "tags",
	"cache", "workdir", "matrix",  "trace", "auto_outputs", "strict",  "ignore",     "metrics", "executor",
	"cpus",  "mem",     "gpus",    "time",  "partition",    "account", "slurm_args", NULL,
};

/* The keys a [defaults] table may give every step. */
static const char *const default_keys[] = {
	"executor", "cpus", "mem", "gpus", "time", "partition", "account", "slurm_args", NULL,
};

/* What a ${...} may refer to while one step is being substituted. */
struct subst {
	struct dag *d;
	const struct toml_value *vars;
	const struct dag_step *st; /* its matrix values are in mkeys/mvals */
	const struct strvec *mkeys, *mvals;
	int allow_steps;
	unsigned char *refs; /* steps referenced, d->n entries */
	size_t *touched;     /* the indices set in refs, ntouched of them */
	size_t ntouched;
	const struct name_ent *names; /* names_index() */
};

static void step_free(struct dag_step *s)
{
	free(s->name);
	free(s->base);
	sv_release(&s->argv);
	sv_release(&s->inputs);
	sv_release(&s->outputs);
	sv_release(&s->envs);
	sv_release(&s->env_set);
	sv_release(&s->params);
	sv_release(&s->tags);
	sv_release(&s->metrics);
	sv_release(&s->ignore);
	sv_release(&s->norm_in);
	sv_release(&s->norm_out);
	free(s->workdir);
	free(s->timeout);
	free(s->preds);
	free(s->res.cpus);
	free(s->res.mem);
	free(s->res.gpus);
	free(s->res.time);
	free(s->res.partition);
	free(s->res.account);
	sv_release(&s->res.slurm_args);
}

void dag_free(struct dag *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		step_free(&d->steps[i]);
	free(d->steps);
	free(d->order);
	free(d->file);
	free(d->dir);
	free(d);
}

long dag_find(const struct dag *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->steps[i].name, name))
			return (long)i;
	return -1;
}

/* A step name in deps or a reference matches a step exactly, or every
 * expansion of a sweep by its base name. */
static int name_matches(const struct dag_step *s, const char *name)
{
	return !strcmp(s->name, name) || !strcmp(s->base, name);
}

/* Every step under its name and under its base name, sorted by name, then
 * file order: what a name matches is found by binary search, not by a
 * pass over every step for each reference and each dep. */
struct name_ent {
	const char *key;
	size_t step;
};

static int by_name(const void *a, const void *b)
{
	const struct name_ent *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : x->step < y->step ? -1 : x->step > y->step;
}

static struct name_ent *names_index(const struct dag *d)
{
	struct name_ent *v = xmalloc((2 * d->n + 1) * sizeof(*v));
	for (size_t i = 0; i < d->n; i++) {
		v[2 * i] = (struct name_ent){ d->steps[i].name, i };
		v[2 * i + 1] = (struct name_ent){ d->steps[i].base, i };
	}
	qsort(v, 2 * d->n, sizeof(*v), by_name);
	return v;
}

/* The steps name matches, in file order, through *next: start with
 * *pos = 0; returns 0 when there are no more. */
static int names_next(const struct name_ent *v, size_t n, const char *name, size_t *pos, size_t *step)
{
	if (!*pos) {
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (strcmp(v[mid].key, name) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		*pos = lo + 1;
	}
	/* a step whose name is its base appears twice in a row */
	while (*pos - 1 < n && !strcmp(v[*pos - 1].key, name)) {
		size_t i = (*pos)++ - 1;
		if (i + 1 < n && !strcmp(v[i + 1].key, name) && v[i + 1].step == v[i].step)
			continue;
		*step = v[i].step;
		return 1;
	}
	return 0;
}

/* Scalars as text: floats in the shortest form that reads back the same,
 * so `lr = 0.1` names a step "train@lr=0.1", not 0.10000000000000001. */
static int scalar_text(const struct toml_value *v, struct strbuf *out)
{
	char buf[64];
	switch (toml_type(v)) {
	case TOML_STRING:
		sb_adds(out, toml_string(v, NULL));
		return 0;
	case TOML_INTEGER:
		sb_addf(out, "%lld", (long long)toml_int(v));
		return 0;
	case TOML_FLOAT: {
		double f = toml_float(v);
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, f);
			if (strtod(buf, NULL) == f || isnan(f))
				break;
		}
		sb_adds(out, buf);
		return 0;
	}
	case TOML_BOOL:
		sb_adds(out, toml_bool(v) ? "true" : "false");
		return 0;
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL:
		sb_adds(out, toml_datetime(v));
		return 0;
	default:
		return -1;
	}
}

/* Collects the outputs ${steps.NAME.outputs} stands for: every output of
 * every step NAME matches, in file order. */
static int step_outputs(struct subst *c, const char *name, struct strvec *out)
{
	int found = 0;
	for (size_t pos = 0, i; names_next(c->names, 2 * c->d->n, name, &pos, &i);) {
		const struct dag_step *s = &c->d->steps[i];
		found = 1;
		if (!c->refs[i])
			c->touched[c->ntouched++] = i;
		c->refs[i] = 1;
		for (size_t k = 0; k < s->outputs.n; k++)
			sv_push(out, s->outputs.v[k]);
	}
	return found;
}

/* Resolves the reference inside "${...}" (ref, len bytes) to a list of
 * values: one for vars and matrix, every output for steps.X.outputs. */
static int resolve(struct subst *c, const char *ref, size_t len, struct strvec *vals)
{
	char *r = xstrndup(ref, len);
	const char *what = "variable";
	int rc = -1;
	if (!strncmp(r, "vars.", 5)) {
		const struct toml_value *v = c->vars ? toml_table_get(c->vars, r + 5) : NULL;
		if (v) {
			struct strbuf sb = STRBUF_INIT;
			scalar_text(v, &sb);
			sv_push_nocopy(vals, sb_detach(&sb));
			rc = 0;
		}
	} else if (!strncmp(r, "matrix.", 7)) {
		for (size_t i = 0; c->mkeys && i < c->mkeys->n; i++)
			if (!strcmp(c->mkeys->v[i], r + 7)) {
				sv_push(vals, c->mvals->v[i]);
				rc = 0;
			}
	} else if (!strncmp(r, "steps.", 6)) {
		char *dot = strrchr(r + 6, '.');
		long idx = -1;
		what = "reference";
		if (dot && !strncmp(dot, ".outputs[", 9)) {
			char *end;
			idx = strtol(dot + 9, &end, 10);
			if (end == dot + 9 || strcmp(end, "]") || idx < 0)
				dot = NULL;
		} else if (dot && strcmp(dot, ".outputs")) {
			dot = NULL;
		}
		if (dot) {
			*dot = 0;
			if (!c->allow_steps) {
				err_set("step '%s': outputs cannot refer to other steps ('${%.*s}')", c->st->name,
					(int)len, ref);
				goto out;
			}
			struct strvec all = STRVEC_INIT;
			if (!step_outputs(c, r + 6, &all)) {
				sv_release(&all);
				err_set("unknown step '%s' in '${%.*s}' of step '%s'", r + 6, (int)len, ref,
					c->st->name);
				goto out;
			}
			if (idx < 0) {
				for (size_t i = 0; i < all.n; i++)
					sv_push(vals, all.v[i]);
				rc = 0;
			} else if ((size_t)idx < all.n) {
				sv_push(vals, all.v[idx]);
				rc = 0;
			} else {
				err_set("'${%.*s}' of step '%s': step '%s' has %zu outputs", (int)len, ref, c->st->name,
					r + 6, all.n);
				sv_release(&all);
				goto out;
			}
			sv_release(&all);
		}
	}
	if (rc < 0)
		err_set("unknown %s '%.*s' in step '%s'", what, (int)len, ref, c->st->name);
out:
	free(r);
	return rc;
}

/* Only these prefixes are ours: any other ${...} (a shell's ${HOME}) is
 * left for the command. */
static const char *next_ref(const char *s)
{
	for (const char *p = strstr(s, "${"); p; p = strstr(p + 2, "${"))
		if (!strncmp(p + 2, "vars.", 5) || !strncmp(p + 2, "matrix.", 7) || !strncmp(p + 2, "steps.", 6))
			return p;
	return NULL;
}

/* Substitutes every reference in s into out; a list joins with spaces. */
static int subst_str(struct subst *c, const char *s, struct strbuf *out)
{
	const char *p;
	while ((p = next_ref(s))) {
		const char *end = strchr(p, '}');
		if (!end)
			return err_set("step '%s': unterminated '${' in '%s'", c->st->name, s);
		sb_add(out, s, (size_t)(p - s));
		struct strvec vals = STRVEC_INIT;
		if (resolve(c, p + 2, (size_t)(end - p - 2), &vals) < 0) {
			sv_release(&vals);
			return -1;
		}
		for (size_t i = 0; i < vals.n; i++) {
			if (i)
				sb_addc(out, ' ');
			sb_adds(out, vals.v[i]);
		}
		sv_release(&vals);
		s = end + 1;
	}
	sb_adds(out, s);
	return 0;
}

/* Substitutes one array element into out: an element that is exactly one
 * ${steps.X.outputs} becomes one element per output (fan-in). */
static int subst_elem(struct subst *c, const char *s, struct strvec *out)
{
	const char *p = next_ref(s);
	if (p == s && !strncmp(s, "${steps.", 8) && strchr(s, '}') == s + strlen(s) - 1)
		return resolve(c, s + 2, strlen(s) - 3, out);
	struct strbuf sb = STRBUF_INIT;
	if (subst_str(c, s, &sb) < 0) {
		sb_release(&sb);
		return -1;
	}
	sv_push_nocopy(out, sb_detach(&sb));
	return 0;
}

/* The caller prefixes messages with "file:line: "; err_msg() is rewritten. */
static int at_line(const struct dag *d, int line)
{
	struct strbuf sb = STRBUF_INIT;
	sb_addf(&sb, "%s:%d: %s", d->file, line, err_msg());
	err_set("%s", sb.buf);
	sb_release(&sb);
	return -1;
}

static int fail(const struct dag *d, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int fail(const struct dag *d, int line, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	err_set("%s:%d: %s", d->file, line, sb.buf);
	sb_release(&sb);
	return -1;
}

/* Reads an array of strings (NULL value: nothing) and substitutes each. */
static int str_array(struct dag *d, struct subst *c, const char *key, const struct toml_value *v, struct strvec *out)
{
	if (!v)
		return 0;
	if (toml_type(v) != TOML_ARRAY)
		return fail(d, toml_line(v), "step '%s': '%s' must be an array of strings", c->st->name, key);
	for (size_t i = 0; i < toml_array_len(v); i++) {
		const struct toml_value *e = toml_array_get(v, i);
		if (toml_type(e) != TOML_STRING)
			return fail(d, toml_line(e), "step '%s': '%s' must be an array of strings", c->st->name, key);
		size_t had = out->n;
		if (subst_elem(c, toml_string(e, NULL), out) < 0)
			return at_line(d, toml_line(e));
		/* "" would be taken for the step's directory */
		for (size_t k = had; k < out->n && (!strcmp(key, "inputs") || !strcmp(key, "outputs")); k++)
			if (!*out->v[k])
				return fail(d, toml_line(e), "step '%s': an empty path in '%s'", c->st->name, key);
	}
	return 0;
}

/* Lexical normalization of dir/path: "." and "" parts dropped, ".." pops. */
static char *norm_path(const char *dir, const char *path)
{
	struct strbuf in = STRBUF_INIT, out = STRBUF_INIT;
	if (path[0] != '/' && strcmp(dir, ".")) {
		sb_adds(&in, dir);
		sb_addc(&in, '/');
	}
	sb_adds(&in, path);
	if (in.buf[0] == '/')
		sb_addc(&out, '/');
	char *save = NULL;
	for (char *part = strtok_r(in.buf, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		if (!strcmp(part, "."))
			continue;
		if (!strcmp(part, "..")) {
			char *slash = strrchr(out.buf ? out.buf : "", '/');
			const char *last = slash ? slash + 1 : sb_str(&out);
			if (out.len && strcmp(last, "..") && strcmp(sb_str(&out), "/")) {
				sb_setlen(&out, slash ? (size_t)(slash - out.buf) + (slash == out.buf) : 0);
				continue;
			}
		}
		if (out.len && out.buf[out.len - 1] != '/')
			sb_addc(&out, '/');
		sb_adds(&out, part);
	}
	if (!out.len)
		sb_addc(&out, '.');
	sb_release(&in);
	return sb_detach(&out);
}

static int has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* a is b, or one is inside the other (a directory output). */
static int path_related(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la == lb)
		return !strcmp(a, b);
	if (la < lb)
		return !strncmp(a, b, la) && (b[la] == '/' || !strcmp(a, "."));
	return !strncmp(a, b, lb) && (a[lb] == '/' || !strcmp(b, "."));
}

/* Does input (normalized) consume output (normalized)? */
static int consumes(const char *in, const char *out)
{
	if (path_related(in, out))
		return 1;
	return has_glob(in) && fnmatch(in, out, FNM_PATHNAME) == 0;
}

/* "local" or "slurm" (v a string), else an error naming where. */
static int executor_of(struct dag *d, const struct toml_value *v, const char *where, enum dag_executor *out)
{
	const char *e = toml_string(v, NULL);
	if (e && !strcmp(e, "local"))
		*out = DAG_EXEC_LOCAL;
	else if (e && !strcmp(e, "slurm"))
		*out = DAG_EXEC_SLURM;
	else
		return fail(d, toml_line(v), "%s'executor' must be \"local\" or \"slurm\"", where);
	return 0;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* Slurm's own time forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
static int slurm_time_form(const char *s)
{
	const char *p = s;
	int colons = 0;
	if (strchr(p, '-')) {
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == s || *p++ != '-')
			return 0;
	}
	for (const char *q = p; *q; q++)
		colons += *q == ':';
	if (colons > 2 || !*p)
		return 0;
	for (; *p; p++)
		if ((*p < '0' || *p > '9') && *p != ':')
			return 0;
	return !strstr(s, "::") && s[strlen(s) - 1] != ':';
}

/* Checks one resource value (after substitution) and puts it in the form
 * sbatch takes: time as whole minutes when written as a duration ("90s":
 * 2, Slurm counts minutes). Returns 0, or -1 with the message's tail. */
static int resource_check(const char *key, const char *v, struct strbuf *out)
{
	int64_t ms;
	if (!strcmp(key, "cpus")) {
		if (!all_digits(v) || atol(v) < 1 || strlen(v) > 6)
			return err_set("'cpus' must be a positive integer, not '%s'", v);
	} else if (!strcmp(key, "gpus")) {
		const char *colon = strrchr(v, ':');
		if (!all_digits(colon ? colon + 1 : v) || strlen(v) > 64 || strpbrk(v, " \t,=") ||
		    (colon && colon == v))
			return err_set("'gpus' must be a count or TYPE:COUNT, not '%s'", v);
	} else if (!strcmp(key, "mem")) {
		size_t n = strlen(v);
		struct strbuf num = STRBUF_INIT;
		sb_add(&num, v, n && strchr("KMGTkmgt", v[n - 1]) ? n - 1 : n);
		int ok = all_digits(sb_str(&num)) && atoll(sb_str(&num)) > 0 && num.len < 12;
		sb_release(&num);
		if (!ok)
			return err_set("'mem' must be a size such as \"500M\" or \"4G\", not '%s'", v);
	} else if (!strcmp(key, "time")) {
		if (strpbrk(v, "smhd") && parse_duration_ms(v, &ms) == 0 && ms > 0) {
			sb_addf(out, "%lld", (long long)((ms + 59999) / 60000));
			return 0;
		}
		err_clear();
		if (!slurm_time_form(v))
			return err_set("'time' must be a duration such as \"10m\" or Slurm's D-HH:MM:SS, not '%s'", v);
	} else if (!*v || strpbrk(v, " \t\n")) {
		return err_set("'%s' must be a non-empty word, not '%s'", key, v);
	}
	sb_adds(out, v);
	return 0;
}

/* Sets s's resources from table t ([defaults] or the step's own), each
 * key t gives replacing what an earlier table gave. */
static int load_resources(struct dag *d, struct subst *c, struct dag_step *s, const struct toml_value *t)
{
	static const char *const keys[] = { "cpus", "mem", "gpus", "time", "partition", "account" };
	char **dst[] = { &s->res.cpus, &s->res.mem, &s->res.gpus, &s->res.time, &s->res.partition, &s->res.account };
	const struct toml_value *v;
	for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++) {
		struct strbuf raw = STRBUF_INIT, val = STRBUF_INIT;
		int counted = k < 3; /* cpus, mem (MB) and gpus may be integers */
		if (!(v = toml_table_get(t, keys[k])))
			continue;
		if (counted && toml_type(v) == TOML_INTEGER) {
			sb_addf(&raw, "%lld", (long long)toml_int(v));
		} else if (toml_type(v) != TOML_STRING) {
			return fail(d, toml_line(v), "step '%s': '%s' must be a string%s", s->name, keys[k],
				    counted ? " or an integer" : "");
		} else if (subst_str(c, toml_string(v, NULL), &raw) < 0) {
			sb_release(&raw);
			return at_line(d, toml_line(v));
		}
		int bad = resource_check(keys[k], raw.buf, &val) < 0;
		sb_release(&raw);
		if (bad) {
			sb_release(&val);
			return fail(d, toml_line(v), "step '%s': %s", s->name, err_msg());
		}
		free(*dst[k]);
		*dst[k] = sb_detach(&val);
	}
	if ((v = toml_table_get(t, "slurm_args"))) {
		sv_release(&s->res.slurm_args);
		if (str_array(d, c, "slurm_args", v, &s->res.slurm_args) < 0)
			return -1;
	}
	return 0;
}

void dag_sbatch_args(const struct dag_step *s, struct strvec *out)
{
	const struct {
		const char *opt, *val;
	} f[] = {
		{ "--partition=", s->res.partition }, { "--account=", s->res.account },
		{ "--cpus-per-task=", s->res.cpus },  { "--mem=", s->res.mem },
		{ "--gpus=", s->res.gpus },           { "--time=", s->res.time },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(*f); i++) {
		struct strbuf sb = STRBUF_INIT;
		if (!f[i].val || (!strcmp(f[i].opt, "--gpus=") && !strcmp(f[i].val, "0")))
			continue;
		sb_addf(&sb, "%s%s", f[i].opt, f[i].val);
		sv_push_nocopy(out, sb_detach(&sb));
	}
	for (size_t i = 0; i < s->res.slurm_args.n; i++)
		sv_push(out, s->res.slurm_args.v[i]);
}

/* Reads the fixed parts of one raw step that need no substitution of other
 * steps: name, workdir, outputs, timeout, retries, cache. */
static int load_step_pass1(struct dag *d, struct subst *c, struct dag_step *s, const struct toml_value *t,
			   const struct toml_value *defaults)
{
	const struct toml_value *v;
	for (size_t i = 0; i < toml_table_count(t); i++) {
		const char *k = toml_table_key(t, i, NULL);
		size_t j = 0;
		while (step_keys[j] && strcmp(step_keys[j], k))
			j++;
		if (!step_keys[j])
			return fail(d, toml_line(toml_table_value(t, i)), "unknown key '%s' in step '%s'", k, s->base);
	}
	if ((v = toml_table_get(t, "workdir"))) {
		if (toml_type(v) != TOML_STRING)
			return fail(d, toml_line(v), "step '%s': 'workdir' must be a string", s->name);
		struct strbuf sb = STRBUF_INIT;
		if (subst_str(c, toml_string(v, NULL), &sb) < 0) {
			sb_release(&sb);
			return at_line(d, toml_line(v));
		}
		s->workdir = norm_path(".", sb.buf);
		sb_release(&sb);
	} else {
		s->workdir = xstrdup(".");
	}
	if ((v = toml_table_get(t, "outputs"))) {
		s->out_line = toml_line(v);
		if (str_array(d, c, "outputs", v, &s->outputs) < 0)
			return -1;
	}
	if ((v = toml_table_get(t, "metrics"))) {
		if (!s->out_line)
			s->out_line = toml_line(v);
		if (str_array(d, c, "metrics", v, &s->metrics) < 0)
			return -1;
		/* a metrics file is an output first, as exec's --metrics */
		for (size_t i = 0; i < s->metrics.n; i++) {
			int declared = 0;
			for (size_t k = 0; k < s->outputs.n && !declared; k++)
				declared = !strcmp(s->outputs.v[k], s->metrics.v[i]);
			if (!declared)
				sv_push(&s->outputs, s->metrics.v[i]);
		}
	}
	if ((v = toml_table_get(t, "timeout"))) {
		int64_t ms;
		if (toml_type(v) != TOML_STRING)
			return fail(d, toml_line(v), "step '%s': 'timeout' must be a duration string such as \"10m\"",
				    s->name);
		if (parse_duration_ms(toml_string(v, NULL), &ms) < 0)
			return fail(d, toml_line(v), "step '%s': timeout: %s", s->name, err_msg());
		s->timeout = xstrdup(toml_string(v, NULL));
	}
	s->retries = -1;
	if ((v = toml_table_get(t, "retries"))) {
		if (toml_type(v) != TOML_INTEGER || toml_int(v) < 0 || toml_int(v) > 100)
			return fail(d, toml_line(v), "step '%s': 'retries' must be an integer from 0 to 100", s->name);
		s->retries = (int)toml_int(v);
	}
	/* booleans: cache and trace default to true */
	const struct {
		const char *key;
		int *dst, dflt;
	} bools[] = {
		{ "cache", &s->cache, 1 },
		{ "trace", &s->trace, 1 },
		{ "auto_outputs", &s->auto_outputs, 0 },
		{ "strict", &s->strict, 0 },
	};
	for (size_t i = 0; i < sizeof(bools) / sizeof(*bools); i++) {
		*bools[i].dst = bools[i].dflt;
		if (!(v = toml_table_get(t, bools[i].key)))
			continue;
		if (toml_type(v) != TOML_BOOL)
			return fail(d, toml_line(v), "step '%s': '%s' must be true or false", s->name, bools[i].key);
		*bools[i].dst = toml_bool(v);
	}
	if ((v = toml_table_get(t, "ignore")) && str_array(d, c, "ignore", v, &s->ignore) < 0)
		return -1;
	if ((v = toml_table_get(t, "executor"))) {
		struct strbuf where = STRBUF_INIT;
		sb_addf(&where, "step '%s': ", s->name);
		int bad = executor_of(d, v, where.buf, &s->executor) < 0;
		sb_release(&where);
		if (bad)
			return -1;
	}
	if (defaults && load_resources(d, c, s, defaults) < 0)
		return -1;
	return load_resources(d, c, s, t);
}

/* Everything else, now that every step's outputs are known. */
static int load_step_pass2(struct dag *d, struct subst *c, struct dag_step *s, const struct toml_value *t)
{
	const struct toml_value *v = toml_table_get(t, "cmd");
	if (!v)
		return fail(d, s->line, "step '%s' has no 'cmd'", s->name);
	if (toml_type(v) == TOML_STRING) {
		struct strbuf sb = STRBUF_INIT;
		if (subst_str(c, toml_string(v, NULL), &sb) < 0) {
			sb_release(&sb);
			return at_line(d, toml_line(v));
		}
		s->shell = 1;
		sv_push_nocopy(&s->argv, sb_detach(&sb));
	} else if (toml_type(v) == TOML_ARRAY && toml_array_len(v) > 0) {
		if (str_array(d, c, "cmd", v, &s->argv) < 0)
			return -1;
	} else {
		return fail(d, toml_line(v), "step '%s': 'cmd' must be a string or a non-empty array of strings",
			    s->name);
	}
	if ((v = toml_table_get(t, "inputs"))) {
		s->in_line = toml_line(v);
		if (str_array(d, c, "inputs", v, &s->inputs) < 0)
			return -1;
	}
	if (str_array(d, c, "params", toml_table_get(t, "params"), &s->params) < 0)
		return -1;
	if ((v = toml_table_get(t, "env"))) {
		if (toml_type(v) == TOML_TABLE) {
			for (size_t i = 0; i < toml_table_count(v); i++) {
				const struct toml_value *e = toml_table_value(v, i);
				const char *k = toml_table_key(v, i, NULL);
				struct strbuf sb = STRBUF_INIT;
				if (toml_type(e) != TOML_STRING) {
					sb_release(&sb);
					return fail(d, toml_line(e), "step '%s': env value '%s' must be a string",
						    s->name, k);
				}
				if (!*k || strchr(k, '=')) {
					sb_release(&sb);
					return fail(d, toml_line(e), "step '%s': '%s' is not a variable name", s->name,
						    k);
				}
				sb_addf(&sb, "%s=", k);
				if (subst_str(c, toml_string(e, NULL), &sb) < 0) {
					sb_release(&sb);
					return at_line(d, toml_line(e));
				}
				sv_push(&s->envs, k);
				sv_push_nocopy(&s->env_set, sb_detach(&sb));
			}
		} else if (toml_type(v) == TOML_ARRAY) {
			if (str_array(d, c, "env", v, &s->envs) < 0)
				return -1;
			/* a name or a pattern (CFG_*), never NAME=VALUE: that is the table's */
			for (size_t i = 0; i < s->envs.n; i++)
				if (!*s->envs.v[i] || strchr(s->envs.v[i], '='))
					return fail(d, toml_line(v), "step '%s': env '%s' is not a variable name%s",
						    s->name, s->envs.v[i],
						    strchr(s->envs.v[i], '=')
							    ? " (a value goes in a table: env = { A = \"1\" })"
							    : "");
		} else {
			return fail(d, toml_line(v), "step '%s': 'env' must be an array of names or a table of values",
				    s->name);
		}
	}
	if ((v = toml_table_get(t, "tags"))) {
		if (toml_type(v) != TOML_TABLE)
			return fail(d, toml_line(v), "step '%s': 'tags' must be a table (k = \"v\")", s->name);
		for (size_t i = 0; i < toml_table_count(v); i++) {
			const struct toml_value *e = toml_table_value(v, i);
			struct strbuf sb = STRBUF_INIT;
			sb_addf(&sb, "%s=", toml_table_key(v, i, NULL));
			if (scalar_text(e, &sb) < 0) {
				sb_release(&sb);
				return fail(d, toml_line(e), "step '%s': tag values must be strings", s->name);
			}
			sv_push_nocopy(&s->tags, sb_detach(&sb));
		}
	}
	return 0;
}

/* Splits a [steps.NAME] table into its sweep expansions (one if no matrix):
 * appends steps to d, and their matrix values to keys/vals (one strvec per
 * expansion, parallel to d->steps). */
static int expand(struct dag *d, const char *name, const struct toml_value *t, struct strvec **mk, struct strvec **mv,
		  size_t *alloc)
{
	const struct toml_value *m = toml_table_get(t, "matrix");
	size_t combos = 1, nk = 0;
	if (m) {
		if (toml_type(m) != TOML_TABLE || !toml_table_count(m))
			return fail(d, toml_line(m), "step '%s': 'matrix' must be a table of arrays", name);
		nk = toml_table_count(m);
		for (size_t k = 0; k < nk; k++) {
			const struct toml_value *a = toml_table_value(m, k);
			if (toml_type(a) != TOML_ARRAY || !toml_array_len(a))
				return fail(d, toml_line(a), "step '%s': matrix '%s' must be a non-empty array", name,
					    toml_table_key(m, k, NULL));
			/* each value names a step ("t@lr=1"): two that read the
			 * same (1, 1.0, "1") would be one step run as several */
			struct strvec texts = STRVEC_INIT, sorted = STRVEC_INIT;
			struct strbuf v = STRBUF_INIT;
			int rc = 0;
			for (size_t i = 0; rc == 0 && i < toml_array_len(a); i++) {
				const struct toml_value *e = toml_array_get(a, i);
				if (toml_type(e) == TOML_ARRAY || toml_type(e) == TOML_TABLE) {
					rc = fail(d, toml_line(e), "step '%s': matrix values must be scalars", name);
					break;
				}
				sb_reset(&v);
				scalar_text(e, &v);
				sv_push(&texts, v.buf);
				sv_push(&sorted, v.buf);
			}
			sv_sort(&sorted);
			for (size_t i = 1; rc == 0 && i < sorted.n; i++) {
				if (strcmp(sorted.v[i], sorted.v[i - 1]))
					continue;
				size_t second = 0; /* where it is said again */
				for (size_t j = 0, seen = 0; j < texts.n && !second; j++)
					if (!strcmp(texts.v[j], sorted.v[i]) && seen++)
						second = j;
				rc = fail(d, toml_line(toml_array_get(a, second)),
					  "step '%s': matrix '%s' has the value %s twice", name,
					  toml_table_key(m, k, NULL), sorted.v[i]);
			}
			sv_release(&texts);
			sv_release(&sorted);
			sb_release(&v);
			if (rc < 0)
				return rc;
			combos *= toml_array_len(a);
			if (combos > 10000)
				return fail(d, toml_line(m), "step '%s': the matrix has more than 10000 combinations",
					    name);
		}
	}
	for (size_t c = 0; c < combos; c++) {
		if (d->n == *alloc) {
			*alloc = *alloc ? 2 * *alloc : 16;
			d->steps = xrealloc(d->steps, *alloc * sizeof(*d->steps));
			*mk = xrealloc(*mk, *alloc * sizeof(**mk));
			*mv = xrealloc(*mv, *alloc * sizeof(**mv));
		}
		struct dag_step *s = &d->steps[d->n];
		struct strvec *keys = &(*mk)[d->n], *vals = &(*mv)[d->n];
		memset(s, 0, sizeof(*s));
		memset(keys, 0, sizeof(*keys));
		memset(vals, 0, sizeof(*vals));
		d->n++;
		struct strbuf nm = STRBUF_INIT;
		sb_adds(&nm, name);
		/* the first key varies slowest, as in nested loops written in order */
		size_t rest = c;
		size_t div = combos;
		for (size_t k = 0; k < nk; k++) {
			const struct toml_value *a = toml_table_value(m, k);
			div /= toml_array_len(a);
			struct strbuf v = STRBUF_INIT;
			scalar_text(toml_array_get(a, rest / div), &v);
			rest %= div;
			sb_addf(&nm, "%s%s=%s", k ? "," : "@", toml_table_key(m, k, NULL), v.buf);
			sv_push(keys, toml_table_key(m, k, NULL));
			sv_push_nocopy(vals, sb_detach(&v));
		}
		s->name = sb_detach(&nm);
		s->base = xstrdup(name);
		s->line = toml_line(t);
	}
	return 0;
}

/* The edges "consumer needs producer", collected as pairs and sorted
 * once: a matrix of n * n would be 10 GB at 100,000 steps. */
struct edges {
	size_t (*e)[2]; /* { producer, consumer } */
	size_t n, alloc;
};

static void edge_add(struct edges *E, size_t from, size_t to)
{
	if (E->n == E->alloc) {
		E->alloc = E->alloc ? E->alloc * 2 : 64;
		E->e = xrealloc(E->e, E->alloc * sizeof(*E->e));
	}
	E->e[E->n][0] = from;
	E->e[E->n++][1] = to;
}

static int by_consumer(const void *a, const void *b)
{
	const size_t *x = a, *y = b;
	return x[1] != y[1] ? (x[1] < y[1] ? -1 : 1) : x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : 0;
}

/* An output and the step writing it, sorted by path: the outputs related
 * to a path (itself, its directories, what is under it) are found by
 * binary search instead of comparing every pair of steps. */
struct out_ent {
	const char *path;
	size_t step;
};

static int by_out_path(const void *a, const void *b)
{
	const struct out_ent *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : x->step < y->step ? -1 : x->step > y->step;
}

/* The first entry whose path is not below key[0..len) in byte order. */
static size_t lower_bound(const struct out_ent *o, size_t n, const char *key, size_t len)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strncmp(o[mid].path, key, len) < 0) /* a path with the prefix is not below it */
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Calls fn for every output that may be related to path (a superset:
 * the caller checks each with path_related or consumes): the same path,
 * its directories, what lies under it, "." and what starts with "." as
 * path_related has it, and for a glob every output starting with its
 * literal part. Stops at fn's first nonzero return, which it returns. */
static int related_outputs(const struct out_ent *o, size_t n, const char *path,
			   int (*fn)(void *ctx, const struct out_ent *e), void *ctx)
{
	size_t len = strlen(path), i;
	struct strbuf under = STRBUF_INIT;
	int r = 0;
	/* the same path */
	for (i = lower_bound(o, n, path, len); i < n && !strcmp(o[i].path, path); i++)
		if ((r = fn(ctx, &o[i])))
			goto out;
	/* what lies under it (for ".", what starts with '.') */
	sb_adds(&under, strcmp(path, ".") ? path : "");
	sb_addc(&under, strcmp(path, ".") ? '/' : '.');
	for (i = lower_bound(o, n, under.buf, under.len); i < n && !strncmp(o[i].path, under.buf, under.len); i++)
		if ((r = fn(ctx, &o[i])))
			goto out;
	/* its directories, and "." for a path starting with '.' */
	for (size_t k = 1; k < len; k++) {
		if (path[k] != '/')
			continue;
		for (i = lower_bound(o, n, path, k); i < n && !strncmp(o[i].path, path, k) && !o[i].path[k]; i++)
			if ((r = fn(ctx, &o[i])))
				goto out;
	}
	if (path[0] == '.' && strcmp(path, "."))
		for (i = lower_bound(o, n, ".", 1); i < n && !strcmp(o[i].path, "."); i++)
			if ((r = fn(ctx, &o[i])))
				goto out;
	if (has_glob(path)) {
		size_t lit = strcspn(path, "*?[\\");
		for (i = lower_bound(o, n, path, lit); i < n && !strncmp(o[i].path, path, lit); i++)
			if ((r = fn(ctx, &o[i])))
				goto out;
	}
out:
	sb_release(&under);
	return r;
}

/* related_outputs' visitor for the check that no two steps write one
 * path: 1 at an output of another step that is related. */
struct clash {
	const struct out_ent *self;
};

static int clashes(void *ctx, const struct out_ent *e)
{
	const struct clash *c = ctx;
	return e->step != c->self->step && path_related(c->self->path, e->path);
}

/* The visitor that links an input to the steps writing it. */
struct producers {
	struct dag *d;
	struct edges *E;
	const char *in;
	size_t consumer;
	int produced;
};

static int produces(void *ctx, const struct out_ent *e)
{
	struct producers *p = ctx;
	if (!consumes(p->in, e->path))
		return 0;
	if (e->step == p->consumer)
		return 1;
	edge_add(p->E, e->step, p->consumer);
	p->produced = 1;
	return 0;
}

/* The first cycle, by a depth-first search through the successors
 * (producer -> consumer) in index order from each step in turn, without
 * recursion (a chain of 100,000 steps); on one, sets the error naming it. */
static int find_cycle(const struct dag *d, size_t *const *succ, const size_t *nsucc)
{
	size_t n = d->n;
	unsigned char *color = xcalloc(n ? n : 1, 1);
	size_t *stack = xmalloc((n ? n : 1) * sizeof(*stack)), *next = xcalloc(n ? n : 1, sizeof(*next));
	int rc = 0;
	for (size_t root = 0; root < n && !rc; root++) {
		if (color[root])
			continue;
		size_t depth = 0;
		stack[0] = root;
		color[root] = 1;
		for (;;) {
			size_t u = stack[depth];
			if (next[u] == nsucc[u]) {
				color[u] = 2;
				if (!depth)
					break;
				depth--;
				continue;
			}
			size_t v = succ[u][next[u]++];
			if (color[v] == 1) {
				struct strbuf sb = STRBUF_INIT;
				size_t from = 0;
				while (stack[from] != v)
					from++;
				for (size_t i = from; i <= depth; i++)
					sb_addf(&sb, "%s -> ", d->steps[stack[i]].name);
				sb_adds(&sb, d->steps[v].name);
				rc = fail(d, d->steps[v].line, "cycle: %s", sb.buf);
				sb_release(&sb);
				break;
			}
			if (!color[v]) {
				color[v] = 1;
				stack[++depth] = v;
			}
		}
	}
	free(color);
	free(stack);
	free(next);
	return rc;
}

/* The visitor that finds, for one output, the first earlier step in the
 * file writing a related path. */
struct first_writer {
	const char *path;
	size_t before, found; /* found == before: none */
};

static int earlier_writer(void *ctx, const struct out_ent *e)
{
	struct first_writer *w = ctx;
	if (e->step < w->found && path_related(w->path, e->path))
		w->found = e->step;
	return 0;
}

/* The two steps that write one path, named as comparing every pair in
 * file order would name them: the first step that clashes with an
 * earlier one, the first such earlier step, its first output concerned. */
static int name_clash(struct dag *d, const struct out_ent *outs, size_t nout)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct dag_step *s = &d->steps[i];
		size_t best = i, best_a = 0;
		for (size_t a = 0; a < s->norm_out.n; a++) {
			struct first_writer w = { s->norm_out.v[a], i, i };
			related_outputs(outs, nout, w.path, earlier_writer, &w);
			if (w.found < best) {
				best = w.found;
				best_a = a;
			}
		}
		if (best < i)
			return fail(d, s->out_line, "steps '%s' and '%s' both write '%s'", d->steps[best].name, s->name,
				    s->outputs.v[best_a]);
	}
	return 0;
}

/* key[v] orders step v in the heap; without key, v itself */
static size_t heap_key(const size_t *key, size_t v)
{
	return key ? key[v] : v;
}

void dag_heap_push(size_t *h, size_t *n, size_t v, const size_t *key)
{
	size_t i = (*n)++;
	while (i && heap_key(key, h[(i - 1) / 2]) > heap_key(key, v)) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = v;
}

size_t dag_heap_pop(size_t *h, size_t *n, const size_t *key)
{
	size_t top = h[0], v = h[--*n], i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && heap_key(key, h[c + 1]) < heap_key(key, h[c]))
			c++;
		if (heap_key(key, h[c]) >= heap_key(key, v))
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = v;
	return top;
}

/* Edges, then the checks that need them, then a topological order; every
 * part in O(E log E) (no comparison of every pair of steps). */
static int link_steps(struct dag *d, struct edges *E)
{
	size_t n = d->n, nout = 0, k;
	struct out_ent *outs = NULL;
	size_t **succ = NULL, *nsucc = NULL, *indeg = NULL, *heap = NULL;
	int rc = -1;
	for (size_t i = 0; i < n; i++) {
		struct dag_step *s = &d->steps[i];
		for (k = 0; k < s->outputs.n; k++)
			sv_push_nocopy(&s->norm_out, norm_path(s->workdir, s->outputs.v[k]));
		for (k = 0; k < s->inputs.n; k++)
			sv_push_nocopy(&s->norm_in, norm_path(s->workdir, s->inputs.v[k]));
		nout += s->norm_out.n;
	}
	outs = xmalloc((nout ? nout : 1) * sizeof(*outs));
	nout = 0;
	for (size_t i = 0; i < n; i++)
		for (k = 0; k < d->steps[i].norm_out.n; k++)
			outs[nout++] = (struct out_ent){ d->steps[i].norm_out.v[k], i };
	qsort(outs, nout, sizeof(*outs), by_out_path);
	for (size_t x = 0; x < nout; x++) {
		struct clash c = { &outs[x] };
		if (related_outputs(outs, nout, outs[x].path, clashes, &c)) {
			if (name_clash(d, outs, nout) < 0)
				goto out;
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct dag_step *s = &d->steps[i];
		for (k = 0; k < s->norm_in.n; k++) {
			const char *in = s->norm_in.v[k];
			struct producers p = { d, E, in, i, 0 };
			if (related_outputs(outs, nout, in, produces, &p)) {
				fail(d, s->in_line, "step '%s' depends on itself (input '%s' is its own output)",
				     s->name, s->inputs.v[k]);
				goto out;
			}
			if (p.produced || has_glob(in))
				continue;
			struct strbuf path = STRBUF_INIT;
			struct stat sbuf;
			if (in[0] != '/')
				sb_addf(&path, "%s/", d->dir);
			sb_adds(&path, in);
			int missing = stat(path.buf, &sbuf) < 0;
			sb_release(&path);
			if (missing) {
				fail(d, s->in_line, "input '%s' of step '%s' does not exist and no step produces it",
				     s->inputs.v[k], s->name);
				goto out;
			}
		}
	}

	/* preds sorted and unique; successors in index order */
	if (E->n)
		qsort(E->e, E->n, sizeof(*E->e), by_consumer);
	nsucc = xcalloc(n ? n : 1, sizeof(*nsucc));
	for (size_t e = 0; e < E->n; e++) {
		if (e && E->e[e][0] == E->e[e - 1][0] && E->e[e][1] == E->e[e - 1][1])
			continue;
		struct dag_step *s = &d->steps[E->e[e][1]];
		if (!s->preds)
			s->preds = xmalloc(sizeof(*s->preds));
		else if ((s->npreds & (s->npreds - 1)) == 0)
			s->preds = xrealloc(s->preds, 2 * s->npreds * sizeof(*s->preds));
		s->preds[s->npreds++] = E->e[e][0];
		nsucc[E->e[e][0]]++;
	}
	succ = xcalloc(n ? n : 1, sizeof(*succ));
	size_t *fill = xcalloc(n ? n : 1, sizeof(*fill));
	for (size_t i = 0; i < n; i++)
		succ[i] = xmalloc((nsucc[i] ? nsucc[i] : 1) * sizeof(**succ));
	for (size_t i = 0; i < n; i++) /* consumers ascending: each list comes out sorted */
		for (size_t p = 0; p < d->steps[i].npreds; p++) {
			size_t j = d->steps[i].preds[p];
			succ[j][fill[j]++] = i;
		}
	free(fill);
	for (size_t i = 0; i < n; i++)
		if (!d->steps[i].preds)
			d->steps[i].preds = xmalloc(sizeof(*d->steps[i].preds));
	if (find_cycle(d, succ, nsucc) < 0)
		goto out;

	/* Kahn's algorithm, always taking the first ready step in file order,
	 * so the order is stable and reads like the file. */
	indeg = xmalloc((n ? n : 1) * sizeof(*indeg));
	heap = xmalloc((n ? n : 1) * sizeof(*heap));
	d->order = xmalloc((n ? n : 1) * sizeof(*d->order));
	size_t nheap = 0;
	for (size_t i = 0; i < n; i++)
		if (!(indeg[i] = d->steps[i].npreds))
			dag_heap_push(heap, &nheap, i, NULL);
	for (k = 0; k < n && nheap; k++) {
		size_t i = dag_heap_pop(heap, &nheap, NULL);
		d->order[k] = i;
		for (size_t e = 0; e < nsucc[i]; e++)
			if (!--indeg[succ[i][e]])
				dag_heap_push(heap, &nheap, succ[i][e], NULL);
	}
	rc = 0;
out:
	for (size_t i = 0; succ && i < n; i++)
		free(succ[i]);
	free(succ);
	free(nsucc);
	free(indeg);
	free(heap);
	free(outs);
	return rc;
}

int dag_load(const char *path, struct dag **out)
{
	struct toml_value *root = NULL;
	struct dag *d = xcalloc(1, sizeof(*d));
	struct strvec *mk = NULL, *mv = NULL;
	struct edges E = { 0 };
	unsigned char *refs = NULL;
	size_t *touched = NULL;
	struct name_ent *names = NULL;
	const struct toml_value *steps, *vars, *defaults;
	size_t alloc = 0, nm = 0, *first = NULL;
	int rc = -1;

	*out = NULL;
	d->file = xstrdup(path);
	if (toml_parse_file(path, &root) < 0)
		goto out;
	char *abs = realpath(path, NULL);
	if (!abs) {
		err_sys("cannot resolve %s", path);
		goto out;
	}
	*strrchr(abs, '/') = 0;
	d->dir = xstrdup(*abs ? abs : "/");
	free(abs);

	for (size_t i = 0; i < toml_table_count(root); i++) {
		const char *k = toml_table_key(root, i, NULL);
		if (strcmp(k, "vars") && strcmp(k, "steps") && strcmp(k, "defaults") && strcmp(k, "executor")) {
			fail(d, toml_line(toml_table_value(root, i)),
			     "unknown key '%s' (expected executor, [vars], [defaults] or [steps.NAME])", k);
			goto out;
		}
	}
	defaults = toml_table_get(root, "defaults");
	if (defaults && toml_type(defaults) != TOML_TABLE) {
		fail(d, toml_line(defaults), "'defaults' must be a table");
		goto out;
	}
	for (size_t i = 0; defaults && i < toml_table_count(defaults); i++) {
		const char *k = toml_table_key(defaults, i, NULL);
		size_t j = 0;
		while (default_keys[j] && strcmp(default_keys[j], k))
			j++;
		if (!default_keys[j]) {
			fail(d, toml_line(toml_table_value(defaults, i)),
			     "unknown key '%s' in [defaults] (expected executor or a Slurm resource)", k);
			goto out;
		}
	}
	const struct toml_value *ev = toml_table_get(root, "executor");
	if (ev && defaults && toml_table_get(defaults, "executor")) {
		fail(d, toml_line(ev), "'executor' is given both at the top and in [defaults]");
		goto out;
	}
	if (!ev && defaults)
		ev = toml_table_get(defaults, "executor");
	if (ev && executor_of(d, ev, "", &d->executor) < 0)
		goto out;
	vars = toml_table_get(root, "vars");
	if (vars && toml_type(vars) != TOML_TABLE) {
		fail(d, toml_line(vars), "'vars' must be a table");
		goto out;
	}
	for (size_t i = 0; vars && i < toml_table_count(vars); i++) {
		struct strbuf sb = STRBUF_INIT;
		int bad = scalar_text(toml_table_value(vars, i), &sb) < 0;
		sb_release(&sb);
		if (bad) {
			fail(d, toml_line(toml_table_value(vars, i)), "variable '%s' must be a string or a number",
			     toml_table_key(vars, i, NULL));
			goto out;
		}
	}
	steps = toml_table_get(root, "steps");
	if (!steps || toml_type(steps) != TOML_TABLE || !toml_table_count(steps)) {
		fail(d, steps ? toml_line(steps) : 1, "no steps (expected [steps.NAME] tables)");
		goto out;
	}
	/* first[k]: index of the first expansion of the k-th [steps.NAME] */
	first = xmalloc((toml_table_count(steps) + 1) * sizeof(*first));
	for (size_t k = 0; k < toml_table_count(steps); k++) {
		const char *name = toml_table_key(steps, k, NULL);
		const struct toml_value *t = toml_table_value(steps, k);
		if (toml_type(t) != TOML_TABLE) {
			fail(d, toml_line(t), "step '%s' must be a table ([steps.%s])", name, name);
			goto out;
		}
		/* '@' starts a sweep point's values; '/' would read as a path on
		 * the command line (pipeline run FILE TARGET...) */
		if (!*name || strpbrk(name, "@/ \t\n")) {
			fail(d, toml_line(t), "invalid step name '%s' (no spaces, '@' or '/')", name);
			goto out;
		}
		first[k] = d->n;
		int e = expand(d, name, t, &mk, &mv, &alloc);
		nm = d->n;
		if (e < 0)
			goto out;
	}
	first[toml_table_count(steps)] = d->n;

	refs = xcalloc(d->n ? d->n : 1, 1);
	touched = xmalloc((d->n ? d->n : 1) * sizeof(*touched));
	names = names_index(d);
	struct subst c = { d, vars, NULL, NULL, NULL, 0, refs, touched, 0, names };
	for (int pass = 1; pass <= 2; pass++) {
		for (size_t k = 0; k < toml_table_count(steps); k++) {
			const struct toml_value *t = toml_table_value(steps, k);
			for (size_t i = first[k]; i < first[k + 1]; i++) {
				c.st = &d->steps[i];
				c.mkeys = &mk[i];
				c.mvals = &mv[i];
				c.allow_steps = pass == 2;
				if ((pass == 1 ? load_step_pass1(d, &c, &d->steps[i], t, defaults)
					       : load_step_pass2(d, &c, &d->steps[i], t)) < 0)
					goto out;
			}
		}
	}

	/* edges from references and deps (what the passes referenced forgotten) */
	size_t n = d->n;
	for (size_t r = 0; r < c.ntouched; r++)
		refs[c.touched[r]] = 0;
	c.ntouched = 0;
	for (size_t k = 0; k < toml_table_count(steps); k++) {
		const struct toml_value *t = toml_table_value(steps, k);
		const struct toml_value *deps = toml_table_get(t, "deps");
		for (size_t i = first[k]; i < first[k + 1]; i++) {
			struct dag_step *s = &d->steps[i];
			c.st = s;
			c.mkeys = &mk[i];
			c.mvals = &mv[i];
			c.allow_steps = 1;
			/* substituting again only to learn which steps are referenced */
			struct strvec scratch = STRVEC_INIT;
			const char *const fields[] = { "cmd", "inputs", "params", NULL };
			for (size_t f = 0; fields[f]; f++) {
				const struct toml_value *v = toml_table_get(t, fields[f]);
				if (v && toml_type(v) == TOML_STRING)
					subst_elem(&c, toml_string(v, NULL), &scratch);
				for (size_t e = 0; v && toml_type(v) == TOML_ARRAY && e < toml_array_len(v); e++)
					subst_elem(&c, toml_string(toml_array_get(v, e), NULL), &scratch);
			}
			sv_release(&scratch);
			/* only the steps referenced are reset: a pass over all would be n * n */
			for (size_t r = 0; r < c.ntouched; r++) {
				size_t j = c.touched[r];
				refs[j] = 0;
				if (j == i) {
					fail(d, s->line, "step '%s' depends on itself (it refers to its own outputs)",
					     s->name);
					goto out;
				}
				edge_add(&E, j, i);
			}
			c.ntouched = 0;
			if (!deps)
				continue;
			if (toml_type(deps) != TOML_ARRAY) {
				fail(d, toml_line(deps), "step '%s': 'deps' must be an array of step names", s->name);
				goto out;
			}
			for (size_t e = 0; e < toml_array_len(deps); e++) {
				const struct toml_value *dv = toml_array_get(deps, e);
				const char *dn = toml_string(dv, NULL);
				int found = 0;
				if (!dn) {
					fail(d, toml_line(dv), "step '%s': 'deps' must be an array of step names",
					     s->name);
					goto out;
				}
				for (size_t pos = 0, j; names_next(names, 2 * n, dn, &pos, &j);) {
					if (j == i || !strcmp(dn, s->base)) {
						fail(d, toml_line(dv), "step '%s' depends on itself", s->name);
						goto out;
					}
					edge_add(&E, j, i);
					found = 1;
				}
				if (!found) {
					fail(d, toml_line(dv), "unknown step '%s' in deps of step '%s'", dn, s->name);
					goto out;
				}
			}
		}
	}
	if (link_steps(d, &E) < 0)
		goto out;
	*out = d;
	d = NULL;
	rc = 0;
out:
	for (size_t i = 0; i < nm; i++) {
		sv_release(&mk[i]);
		sv_release(&mv[i]);
	}
	free(mk);
	free(mv);
	free(E.e);
	free(refs);
	free(touched);
	free(names);
	free(first);
	toml_free(root);
	dag_free(d);
	return rc;
}

int dag_depends(const struct dag *d, size_t i, size_t j)
{
	/* a visited set: diamonds would make plain recursion exponential */
	unsigned char *seen = xcalloc(d->n, 1);
	size_t *todo = xmalloc(d->n * sizeof(*todo)), ntodo = 0;
	int found = 0;
	todo[ntodo++] = i;
	seen[i] = 1;
	while (ntodo && !found) {
		const struct dag_step *s = &d->steps[todo[--ntodo]];
		for (size_t p = 0; p < s->npreds && !found; p++) {
			size_t q = s->preds[p];
			found = q == j;
			if (!seen[q]) {
				seen[q] = 1;
				todo[ntodo++] = q;
			}
		}
	}
	free(seen);
	free(todo);
	return found;
}

/* Without recursion: a chain of 100,000 steps would exhaust the stack. */
static void mark_upstream(const struct dag *d, size_t i, unsigned char *want)
{
	size_t *todo, n = 0;
	if (want[i])
		return;
	todo = xmalloc(d->n * sizeof(*todo));
	want[i] = 1;
	todo[n++] = i;
	while (n) {
		const struct dag_step *s = &d->steps[todo[--n]];
		for (size_t p = 0; p < s->npreds; p++)
			if (!want[s->preds[p]]) {
				want[s->preds[p]] = 1;
				todo[n++] = s->preds[p];
			}
	}
	free(todo);
}

int dag_check_store(const struct dag *d, const unsigned char *want, const char *store)
{
	struct strbuf cwd = STRBUF_INIT, abs = STRBUF_INIT;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < d->n; i++) {
		const struct dag_step *s = &d->steps[i];
		path_absolute(d->dir, s->workdir, &cwd);
		for (size_t k = 0; rc == 0 && want[i] && k < s->outputs.n; k++) {
			path_absolute(cwd.buf, s->outputs.v[k], &abs);
			if (path_under(abs.buf, store))
				rc = fail(
					d, s->out_line,
					"step '%s': output '%s' is the store (%s) or inside it, which is never an output",
					s->name, s->outputs.v[k], store);
		}
	}
	sb_release(&cwd);
	sb_release(&abs);
	return rc;
}

int dag_select(const struct dag *d, char *const *targets, size_t ntargets, unsigned char *want)
{
	memset(want, 0, d->n);
	if (!ntargets) {
		memset(want, 1, d->n);
		return 0;
	}
	for (size_t t = 0; t < ntargets; t++) {
		int found = 0;
		for (size_t i = 0; i < d->n; i++)
			if (name_matches(&d->steps[i], targets[t])) {
				mark_upstream(d, i, want);
				found = 1;
			}
		if (!found)
			return err_set("unknown step '%s' in %s", targets[t], d->file);
	}
	return 0;
}
