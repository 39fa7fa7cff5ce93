/* trust: who made a run. Runs are signed and checked with OpenSSH's
 * `ssh-keygen -Y`, exactly as git does with gpg.format=ssh: the armored
 * signature of the commit (without its gpgsig header), in the "git"
 * namespace, goes in the gpgsig header, so `git verify-commit` accepts a
 * cashet run and cashet accepts a commit git signed. The policy is an
 * allowed-signers file, git's gpg.ssh.allowedSignersFile format. */
#ifndef CASHET_TRUST_H
#define CASHET_TRUST_H

#include <stddef.h>

#include "util/util.h"

enum trust_state {
	TRUST_UNSIGNED,  /* no signature at all */
	TRUST_ALLOWED,   /* signed by a key the allowed-signers file names (who: its principal) */
	TRUST_UNKNOWN,   /* a good signature by a key the file does not name (who: the key's fingerprint) */
	TRUST_UNCHECKED, /* a good signature, and no file to check it against (who: the key's fingerprint) */
	TRUST_BAD,       /* a signature that does not verify: the run was changed after it was signed */
};

struct trust_verdict {
	enum trust_state state;
	struct strbuf who; /* principal or "SHA256:..." key fingerprint; empty when unsigned or bad */
};

/* Signs len bytes of data with the SSH key at key (a private key, or a
 * public one whose private half is in ssh-agent), appending the armored
 * signature to sig. Temporary files go in tmpdir. 0, or <0 with err_set. */
int trust_sign(const char *key, const char *tmpdir, const char *data, size_t len, struct strbuf *sig);

/* Who signed data with sig (siglen 0: unsigned), checked against the
 * allowed-signers file allowed (NULL: none, only the signature is checked).
 * Fills v (caller releases v->who). <0 with err_set when ssh-keygen cannot
 * be run or the file cannot be read: a caller enforcing a policy refuses. */
int trust_check(const char *allowed, const char *tmpdir, const char *sig, size_t siglen, const char *data, size_t len,
		struct trust_verdict *v);

/* "unsigned", "allowed", "unknown", "unchecked" or "bad": the state in JSON. */
const char *trust_state_name(enum trust_state s);

/* For messages, after "run X is": "unsigned", "signed by ci@example.com",
 * "signed by SHA256:..., not an allowed signer", "signed, but its
 * signature does not verify". */
void trust_describe(const struct trust_verdict *v, struct strbuf *out);

#endif
