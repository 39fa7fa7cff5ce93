/* trust: signing runs and checking who signed them, through `ssh-keygen -Y`
 * (see trust.h). Each call is one short ssh-keygen process (a few ms); it
 * is made where a run is stored (sign) or arrives from elsewhere (check),
 * never on a hit. Standard input, output and error of ssh-keygen are
 * files, not pipes: nothing can block on a full pipe, and the output is
 * read after it exits. */
#include "store/trust.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A temporary file in tmpdir, open for reading and writing and already
 * unlinked unless path is given (then its name is kept there, for an
 * argument of ssh-keygen's). The cap-<pid>- prefix lets store_sweep_tmp
 * remove it if we die first. */
static int tmp_file(const char *tmpdir, struct strbuf *path)
{
	struct strbuf name = STRBUF_INIT;
	sb_addf(&name, "%s/cap-%ld-sig-XXXXXX", tmpdir, (long)getpid());
	int fd = mkostemp(name.buf, O_CLOEXEC);
	if (fd < 0)
		err_sys("cannot create a temporary file in %s", tmpdir);
	else if (path)
		sb_adds(path, name.buf);
	else
		unlink(name.buf);
	sb_release(&name);
	return fd;
}

static int read_back(int fd, struct strbuf *out)
{
	char buf[4096];
	ssize_t n;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return err_sys("cannot read ssh-keygen's output");
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys("cannot read ssh-keygen's output");
		sb_add(out, buf, (size_t)n);
	}
	return 0;
}

/* Runs ssh-keygen with argv (argv[0] "ssh-keygen"), in len bytes of in on
 * its standard input; its standard output is appended to out, its error
 * output to errout. Returns its exit status (0-255), or <0 if it could not
 * be run. */
static int keygen(const char *tmpdir, char *const argv[], const char *in, size_t len, struct strbuf *out,
		  struct strbuf *errout)
{
	posix_spawn_file_actions_t fa;
	int fds[3] = { -1, -1, -1 }, rc = -1, status = 0;
	pid_t pid;
	for (int k = 0; k < 3; k++)
		if ((fds[k] = tmp_file(tmpdir, NULL)) < 0)
			goto out;
	if (write_all(fds[0], in, len) < 0 || lseek(fds[0], 0, SEEK_SET) < 0) {
		err_sys("cannot write a temporary file in %s", tmpdir);
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	for (int k = 0; k < 3; k++)
		posix_spawn_file_actions_adddup2(&fa, fds[k], k);
	int e = posix_spawnp(&pid, "ssh-keygen", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e) {
		errno = e;
		err_sys("cannot run ssh-keygen (OpenSSH's, package openssh-client)");
		goto out;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			err_sys("waitpid");
			goto out;
		}
	if (!WIFEXITED(status)) {
		err_set("ssh-keygen was killed by signal %d", WTERMSIG(status));
		goto out;
	}
	if (read_back(fds[1], out) < 0 || read_back(fds[2], errout) < 0)
		goto out;
	rc = WEXITSTATUS(status);
out:
	for (int k = 0; k < 3; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	return rc;
}

/* The first line of text, for a one-line message. */
static const char *first_line(struct strbuf *text)
{
	sb_setlen(text, strcspn(sb_str(text), "\n"));
	return text->len ? text->buf : "no message";
}

int trust_sign(const char *key, const char *tmpdir, const char *data, size_t len, struct strbuf *sig)
{
	struct strbuf err = STRBUF_INIT;
	char *argv[] = { "ssh-keygen", "-Y", "sign", "-n", "git", "-f", (char *)key, NULL };
	size_t at = sig->len;
	int st = keygen(tmpdir, argv, data, len, sig, &err);
	int rc = 0;
	if (st < 0)
		rc = -1;
	else if (st != 0 || !strstr(sb_str(sig) + at, "-----BEGIN SSH SIGNATURE-----"))
		rc = err_set("cannot sign with %s: ssh-keygen: %s", key, first_line(&err));
	if (rc < 0)
		sb_setlen(sig, at);
	sb_release(&err);
	return rc;
}

/* `ssh-keygen -Y check-novalidate`: 1 if the signature is good, whoever
 * made it (fp filled with the key's "SHA256:..." fingerprint), 0 if not,
 * <0 if it could not be run. */
static int signed_by(const char *tmpdir, const char *sigpath, const char *data, size_t len, struct strbuf *fp)
{
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
	char *argv[] = { "ssh-keygen", "-Y", "check-novalidate", "-n", "git", "-s", (char *)sigpath, NULL };
	int st = keygen(tmpdir, argv, data, len, &out, &err), rc = st < 0 ? -1 : 0;
	/* "Good "git" signature with ED25519 key SHA256:..." */
	const char *key = st == 0 ? strstr(sb_str(&out), " key SHA256:") : NULL;
	if (key) {
		key += 5;
		sb_add(fp, key, strcspn(key, " \n"));
		rc = 1;
	}
	sb_release(&out);
	sb_release(&err);
	return rc;
}

int trust_check(const char *allowed, const char *tmpdir, const char *sig, size_t siglen, const char *data, size_t len,
		struct trust_verdict *v)
{
	struct strbuf sigpath = STRBUF_INIT, out = STRBUF_INIT, err = STRBUF_INIT, who = STRBUF_INIT;
	int fd = -1, rc = -1;
	v->state = TRUST_UNSIGNED;
	sb_reset(&v->who);
	if (!siglen)
		return 0;
	if (allowed && access(allowed, R_OK) < 0) {
		err_sys("trust.allowed-signers: cannot read %s", allowed);
		goto out;
	}
	if ((fd = tmp_file(tmpdir, &sigpath)) < 0)
		goto out;
	if (write_all(fd, sig, siglen) < 0) {
		err_sys("cannot write %s", sigpath.buf);
		goto out;
	}
	if (allowed) {
		/* as git does: the principal the file gives the signing key, then
		 * the signature checked for that principal (and its options:
		 * namespaces, valid-after/before) over these bytes */
		char *find[] = {
			"ssh-keygen", "-Y", "find-principals", "-f", (char *)allowed, "-s", sigpath.buf, NULL
		};
		int st = keygen(tmpdir, find, "", 0, &out, &err);
		if (st < 0)
			goto out;
		if (st == 0 && out.len) {
			sb_add(&who, out.buf, strcspn(out.buf, "\n"));
			char *verify[] = { "ssh-keygen", "-Y", "verify", "-f", (char *)allowed, "-I",
					   who.buf,      "-n", "git",    "-s", sigpath.buf,     NULL };
			if ((st = keygen(tmpdir, verify, data, len, &out, &err)) < 0)
				goto out;
			v->state = st == 0 ? TRUST_ALLOWED : TRUST_BAD;
			if (st == 0)
				sb_add(&v->who, who.buf, who.len);
			rc = 0;
			goto out;
		}
	}
	int good = signed_by(tmpdir, sigpath.buf, data, len, &v->who);
	if (good < 0)
		goto out;
	v->state = !good ? TRUST_BAD : allowed ? TRUST_UNKNOWN : TRUST_UNCHECKED;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (sigpath.len)
		unlink(sigpath.buf);
	sb_release(&sigpath);
	sb_release(&out);
	sb_release(&err);
	sb_release(&who);
	return rc;
}

const char *trust_state_name(enum trust_state s)
{
	static const char *const names[] = { "unsigned", "allowed", "unknown", "unchecked", "bad" };
	return names[s];
}

void trust_describe(const struct trust_verdict *v, struct strbuf *out)
{
	switch (v->state) {
	case TRUST_UNSIGNED:
		sb_adds(out, "unsigned");
		break;
	case TRUST_ALLOWED:
	case TRUST_UNCHECKED:
		sb_addf(out, "signed by %s", sb_str(&v->who));
		break;
	case TRUST_UNKNOWN:
		sb_addf(out, "signed by %s, not an allowed signer", sb_str(&v->who));
		break;
	case TRUST_BAD:
		sb_adds(out, "signed, but its signature does not verify");
		break;
	}
}
