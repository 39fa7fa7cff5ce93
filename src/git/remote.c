/* remote: git remotes as shared caches. Only run refs travel:
 * refs/cashet/runs/<id> (with their commits, trees and blobs, and the
 * parents they name); line refs are per store and rebuilt locally.
 * A remote is configured without a fetch refspec: the refspec is given
 * to each fetch instead. Configured, it would make the store's own run
 * refs that remote's tracking refs, which removing the remote deletes. */
#include "git/gitint.h"

#include <string.h>

#define RUNS_SPEC "+refs/cashet/runs/*:refs/cashet/runs/*"

/* Drops the remote's configured fetch refspecs (a remote added by an
 * older cashet has the store's own runs as its tracking refs), so that
 * git_remote_delete() removes its configuration and nothing else. */
static int forget_fetchspecs(const char *name)
{
	git_config *cfg = NULL;
	struct strbuf key = STRBUF_INIT;
	int rc = 0;
	sb_addf(&key, "remote.%s.fetch", name);
	if (git_repository_config(&cfg, repo) < 0) {
		rc = -1;
	} else {
		int e = git_config_delete_multivar(cfg, key.buf, ".*");
		rc = e == 0 || e == GIT_ENOTFOUND ? 0 : -1;
	}
	git_config_free(cfg);
	sb_release(&key);
	return rc;
}

int gs_remote_config(const char *dir, const char *op, const char *name, const char *url, struct strvec *list)
{
	git_remote *r = NULL;
	git_strarray names = { 0 };
	struct strbuf line = STRBUF_INIT;
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	if (!strcmp(op, "add")) {
		git_remote_create_options opts;
		git_remote_create_options_init(&opts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
		opts.repository = repo;
		opts.name = name;
		opts.flags = GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
		if (git_remote_create_with_opts(&r, url, &opts) < 0)
			goto fail;
	} else if (!strcmp(op, "remove")) {
		if (forget_fetchspecs(name) < 0 || git_remote_delete(repo, name) < 0)
			goto fail;
	} else {
		if (git_remote_list(&names, repo) < 0)
			goto fail;
		for (size_t i = 0; i < names.count; i++) {
			git_remote *x = NULL;
			sb_reset(&line);
			sb_adds(&line, names.strings[i]);
			if (git_remote_lookup(&x, repo, names.strings[i]) == 0 && git_remote_url(x))
				sb_addf(&line, " %s", git_remote_url(x));
			git_remote_free(x);
			sv_push(list, line.buf);
		}
	}
	rc = 0;
	goto out;
fail:
	git_fail(name ? name : "remote");
out:
	git_strarray_dispose(&names);
	git_remote_free(r);
	sb_release(&line);
	return rc;
}

/* ssh: the agent; otherwise no credentials (file paths, git://, public https). */
static int credentials(git_credential **out, const char *url, const char *user, unsigned int allowed, void *payload)
{
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && user)
		return git_credential_ssh_key_from_agent(out, user);
	return GIT_PASSTHROUGH;
}

static int push_status(const char *refname, const char *status, void *payload)
{
	if (status) {
		struct strbuf *errs = payload;
		sb_addf(errs, "%s%s: %s", errs->len ? "; " : "", refname, status);
	}
	return 0;
}

static int lookup(const char *dir, const char *name, git_remote **r)
{
	if (open_repo(dir) < 0)
		return -1;
	if (git_remote_lookup(r, repo, name) < 0)
		return err_set("no remote '%s' (add one with 'cashet remote add %s URL')", name, name);
	return 0;
}

/* Whether the run ref named n (refs/cashet/runs/<id>) names its own commit. */
static int is_run_ref(const char *n, const git_oid *id)
{
	return id && !strncmp(n, "refs/cashet/runs/", 17) && strlen(n + 17) == GIT_OID_HEXSZ &&
	       !strcmp(n + 17, git_oid_tostr_s(id));
}

/* The runs a remote on this machine (a path or a file:// URL) has, read
 * from its refs directly: libgit2's local transport reads every loose ref
 * three times over to list them (at 100,000 runs, 300,000 opens: twice a
 * `git push`'s time). 1 when the remote is not a local repository this
 * way opens: the transport lists its runs then, and says what is wrong. */
static int local_runs(const char *url, struct strvec *have)
{
	git_repository *r = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref;
	const char *path = url, *colon = strchr(url, ':'), *slash = strchr(url, '/');
	int e = -1;
	if (!strncmp(url, "file://", 7))
		path = url + 7;
	else if (colon && (!slash || colon < slash)) /* scheme://, or scp's host:path */
		return 1;
	if (git_repository_open_ext(&r, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0 &&
	    git_reference_iterator_glob_new(&it, r, "refs/cashet/runs/*") == 0) {
		while ((e = git_reference_next(&ref, it)) == 0) {
			if (is_run_ref(git_reference_name(ref), git_reference_target(ref)))
				sv_push(have, git_reference_name(ref) + 17);
			git_reference_free(ref);
		}
	}
	git_reference_iterator_free(it);
	git_repository_free(r);
	git_error_clear();
	if (e == GIT_ITEROVER)
		return 0;
	sv_release(have);
	return 1;
}

int gs_push(const char *dir, const char *name, const struct strvec *hashes)
{
	git_remote *r = NULL;
	git_push_options opts;
	const git_remote_head **heads = NULL;
	size_t nheads = 0;
	struct strvec specs = STRVEC_INIT, have = STRVEC_INIT;
	struct strbuf errs = STRBUF_INIT;
	int rc = -1;
	if (lookup(dir, name, &r) < 0)
		return -1;
	git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
	opts.callbacks.credentials = credentials;
	opts.callbacks.push_update_reference = push_status;
	opts.callbacks.payload = &errs;
	/* libgit2 searches deltas afresh for everything it sends (git reuses
	 * the packs' own): on every core, not one */
	opts.pb_parallelism = 0;
	/* What the remote has first (the refs it advertises anyway): a run it
	 * holds is not pushed again. libgit2 matches every refspec against
	 * every remote ref and updates each, so pushing 100,000 runs that are
	 * all there took 20x a `git push` that finds nothing to do. */
	if (!git_remote_url(r) || local_runs(git_remote_url(r), &have) != 0) {
		if (git_remote_connect(r, GIT_DIRECTION_PUSH, &opts.callbacks, &opts.proxy_opts, NULL) < 0 ||
		    git_remote_ls(&heads, &nheads, r) < 0) {
			git_fail(git_remote_url(r) ? git_remote_url(r) : name);
			goto out;
		}
		for (size_t i = 0; i < nheads; i++)
			if (is_run_ref(heads[i]->name, &heads[i]->oid))
				sv_push(&have, heads[i]->name + 17);
	}
	sv_sort(&have);
	for (size_t i = 0; i < hashes->n; i++) {
		if (sv_sorted_has(&have, hashes->v[i]))
			continue;
		sb_reset(&errs);
		sb_addf(&errs, "refs/cashet/runs/%s:refs/cashet/runs/%s", hashes->v[i], hashes->v[i]);
		sv_push(&specs, errs.buf);
	}
	sb_reset(&errs);
	git_strarray arr = { specs.v, specs.n };
	int pr = specs.n ? git_remote_push(r, &arr, &opts) : 0;
	if (pr < 0) {
		/* E_NOTFOUND only for an object of ours that is missing (gc cut
		 * the run's lineage), not for a remote that is not there */
		const git_error *e = git_error_last();
		git_fail_rc(pr == GIT_ENOTFOUND && e && e->klass == GIT_ERROR_ODB ? pr : GIT_ERROR, git_remote_url(r));
		goto out;
	}
	if (errs.len) {
		err_set("%s: rejected: %s", git_remote_url(r), errs.buf);
		goto out;
	}
	rc = 0;
out:
	git_remote_free(r);
	sv_release(&specs);
	sv_release(&have);
	sb_release(&errs);
	return rc;
}

int gs_fetch(const char *dir, const char *name)
{
	git_remote *r = NULL;
	git_fetch_options opts;
	char *spec = RUNS_SPEC;
	git_strarray arr = { &spec, 1 };
	int rc = 0;
	if (lookup(dir, name, &r) < 0)
		return -1;
	git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
	opts.callbacks.credentials = credentials;
	opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	/* never: fetch.prune in the user's git config would otherwise delete
	 * every local run the remote does not have */
	opts.prune = GIT_FETCH_NO_PRUNE;
	if (git_remote_fetch(r, &arr, &opts, "cashet pull") < 0)
		rc = git_fail(git_remote_url(r));
	git_remote_free(r);
	return rc;
}
