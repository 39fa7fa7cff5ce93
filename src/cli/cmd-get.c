/* cashet get HASH [--stdout|--stderr|--file PATH] [-o FILE]: a run's bytes. */
#include "cli/cli.h"
#include "key/fp.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

int cmd_get(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stdout", no_argument, NULL, '1' },     { "stderr", no_argument, NULL, '2' },
		{ "file", required_argument, NULL, 'F' }, { "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	struct run_record r = { 0 };
	const char *path = NULL, *dest = NULL;
	int kind = FILE_STDOUT, c, rc = 1, fd = -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case '1':
			kind = FILE_STDOUT;
			break;
		case '2':
			kind = FILE_STDERR;
			break;
		case 'F':
			kind = FILE_OUTPUT;
			path = optarg;
			break;
		case 'o':
			dest = optarg;
			break;
		case 'h':
			puts("usage: cashet get HASH [--stdout | --stderr | --file PATH] [-o|--output FILE]");
			return 0;
		default:
			return cli_usage("get", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage("get",
				 "expected one run hash (usage: cashet get HASH [--stdout|--stderr|--file PATH])");
	if (cli_open_store(cli, &st) < 0)
		return cli_fail(1);
	if ((rc = cli_load_run(st, argv[optind], &r)) != 0)
		goto out;
	const struct run_file *f = find_file(st, &r, kind, path);
	if (!f) {
		rc = cli_error(1, "run %.12s has no output file '%s'", r.hash, path ? path : "?");
		goto out;
	}
	struct strbuf tmp = STRBUF_INIT;
	if (dest) {
		sb_addf(&tmp, "%s.cashet-tmp.%ld", dest, (long)getpid());
		fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, f->mode == 0100755 ? 0755 : 0644);
		if (fd < 0) {
			err_sys("cannot create %s", dest);
			rc = cli_fail(1);
		} else if (store_blob_to_fd(st, f, fd) < 0) {
			/* a bad blob says so itself; a write error names the file */
			if (err_code() != E_CORRUPT)
				err_set("cannot write %s: %s", dest, err_msg());
			unlink(tmp.buf);
			rc = cli_fail(1);
		} else if (rename(tmp.buf, dest) < 0) {
			err_sys("cannot write %s", dest);
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
	store_close(st);
	return rc;
}
