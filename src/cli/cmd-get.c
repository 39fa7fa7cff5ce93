/* cashet get HASH [--stdout|--stderr|--file PATH] [-o FILE]: a run's bytes. */
#include "cli/cli.h"
#include "key/fp.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static const struct run_file *find_file(const struct store *st, const struct run_record *r, int kind, const char *path)
{
	struct strbuf want = STRBUF_INIT;
	const struct run_file *found = NULL;
	if (path) {
		fp_store_path(st, NULL, path, &want);
		struct strbuf full = STRBUF_INIT;
		sb_addf(&full, "%s%s", want.buf[0] == '/' ? "abs" : "files/", want.buf);
		sb_reset(&want);
		sb_add(&want, full.buf, full.len);
		sb_release(&full);
	}
	for (size_t i = 0; !found && i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		if (f->kind == kind && (!path || !strcmp(f->path, want.buf) || !strcmp(f->path, path)))
			found = f;
	}
	sb_release(&want);
	return found;
}

struct get_opts {
	int kind;         /* enum file_kind: a stream */
	const char *path; /* an output file instead */
	const char *dest;
};

#define OPTS struct get_opts
static const struct opt get_rows[] = {
	OPT_SET("stdout", 0, kind, FILE_STDOUT, "the run's stdout (the default)"),
	OPT_SET("stderr", 0, kind, FILE_STDERR, "the run's stderr"),
	OPT_STRING("file", 0, path, "PATH", "the output file PATH (not a stream)"),
	OPT_STRING("output", 'o', dest, "FILE", "write to FILE instead of stdout"),
	OPT_END,
};

const struct opt_table cmd_get_options = {
	OPT_ROWS(get_rows),
};
#undef OPTS

int cmd_get(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct get_opts *o = opts;
	struct store *st = cli->st;
	struct run_record r = { 0 };
	int rc, fd = -1;
	if ((rc = cli_load_run(st, argv[0], &r)) != 0)
		goto out;
	const struct run_file *f = find_file(st, &r, o->path ? FILE_OUTPUT : o->kind, o->path);
	if (!f) {
		rc = cli_error(1, "run %.12s has no output file '%s'", r.hash, o->path ? o->path : "?");
		goto out;
	}
	struct strbuf tmp = STRBUF_INIT;
	if (o->dest) {
		sb_addf(&tmp, "%s.cashet-tmp.%ld", o->dest, (long)getpid());
		fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, f->mode == 0100755 ? 0755 : 0644);
		if (fd < 0) {
			err_sys("cannot create %s", o->dest);
			rc = cli_fail(1);
		} else if (store_blob_to_fd(st, f, fd) < 0) {
			/* a bad blob says so itself; a write error names the file */
			if (err_code() != E_CORRUPT)
				err_set("cannot write %s: %s", o->dest, err_msg());
			unlink(tmp.buf);
			rc = cli_fail(1);
		} else if (rename(tmp.buf, o->dest) < 0) {
			err_sys("cannot write %s", o->dest);
			unlink(tmp.buf);
			rc = cli_fail(1);
		} else {
			rc = 0;
		}
	} else {
		/* verified in full before the first byte goes out, in bounded memory */
		struct blob_hold held;
		if (store_blob_check(st, f, &tmp, &held) < 0) {
			rc = cli_fail(1);
		} else if (held.fd >= 0 ? store_blob_send(st, f, &held, STDOUT_FILENO) < 0
					: write_all(STDOUT_FILENO, sb_str(&tmp), tmp.len) < 0) {
			if (held.fd < 0 || err_code() != E_CORRUPT)
				err_set("cannot write the standard output: %s",
					held.fd >= 0 ? err_msg() : strerror(errno));
			rc = cli_fail(1);
		} else {
			rc = 0;
		}
		store_blob_release(&held);
	}
	sb_release(&tmp);
out:
	if (fd >= 0)
		close(fd);
	run_record_free(&r);
	return rc;
}
