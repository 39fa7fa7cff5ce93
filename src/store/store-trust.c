/* store-trust: the store's side of signed runs (trust.h does the signing
 * and checking): which key signs, which allowed-signers file is the
 * policy, and the one check every arriving run passes (store_check_trust,
 * from store_admit in store-xfer.c). Never on the hit path: a local run is
 * trusted because this store made it or admitted it. */
#include "store/store-int.h"
#include "store/gitmod.h"
#include "store/trust.h"

#include <stdlib.h>

/* $env if set and not empty, else the setting key; relative paths are
 * taken from the working directory, as the user gave them. */
static int path_setting(struct store *st, const char *env, const char *key, struct strbuf *out)
{
	const char *v = getenv(env);
	sb_reset(out);
	if (v && *v) {
		sb_adds(out, v);
		return 1;
	}
	return store_setting(st, key, out) && out->len;
}

int store_signing_key(struct store *st, struct strbuf *key)
{
	return path_setting(st, "CASHET_SIGNING_KEY", "signing-key", key);
}

int store_allowed_signers(struct store *st, struct strbuf *path)
{
	return path_setting(st, "CASHET_ALLOWED_SIGNERS", "trust.allowed-signers", path);
}

int store_signer(struct store *st, const char *hash, struct trust_verdict *v)
{
	const struct gitmod *g = gitmod_get();
	struct strbuf sig = STRBUF_INIT, data = STRBUF_INIT, allowed = STRBUF_INIT;
	int rc = -1, s;
	if (!g || (s = g->commit_signature(st->dir, hash, &sig, &data)) < 0)
		goto out;
	int policy = store_allowed_signers(st, &allowed);
	rc = trust_check(policy ? allowed.buf : NULL, store_tmpdir(st), sb_str(&sig), s ? sig.len : 0, sb_str(&data),
			 data.len, v);
out:
	sb_release(&sig);
	sb_release(&data);
	sb_release(&allowed);
	return rc;
}

int store_check_trust(struct store *st, const char *hash)
{
	struct strbuf allowed = STRBUF_INIT, why = STRBUF_INIT;
	struct trust_verdict v = { 0 };
	int rc = 0;
	if (!store_allowed_signers(st, &allowed))
		goto out;
	/* fails closed: a policy that cannot be checked refuses */
	if (store_signer(st, hash, &v) < 0) {
		char *msg = xstrdup(err_msg());
		rc = err_setc(E_UNTRUSTED, "run %.12s cannot be checked: %s", hash, msg);
		free(msg);
		goto out;
	}
	if (v.state != TRUST_ALLOWED) {
		trust_describe(&v, &why);
		rc = err_setc(E_UNTRUSTED, "run %.12s is %s", hash, why.buf);
	}
out:
	sb_release(&allowed);
	sb_release(&why);
	sb_release(&v.who);
	return rc;
}
