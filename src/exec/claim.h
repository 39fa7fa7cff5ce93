/* claim: exactly-once execution across processes. Before running a command
 * a process claims its fingerprint; others wait and then replay the result.
 * A claim whose owner died (same host: pid gone or reused; elsewhere: no
 * heartbeat for CLAIM_TTL) is taken over. */
#ifndef CASHET_CLAIM_H
#define CASHET_CLAIM_H

#include "store/store.h"

#define CLAIM_TTL_MS (30 * 1000)
#define CLAIM_HEARTBEAT_MS (5 * 1000)

/* Describes this process. */
void claim_self(struct claim_owner *me);
/* 1 if the owner is dead (or silent past the TTL). */
int claim_stale(const struct claim_owner *o);
/* 1 if a live process holds fp's claim (gc's busy callback). */
int claim_busy(struct store *st, const struct digest *fp);
/* Claims fp, waiting while a live process holds it. Returns 0 claimed,
 * 1 released by its owner without our claiming it (look the run up again:
 * the owner may have stored it), 2 if cancelled() became non-zero while
 * waiting (a signal), <0 error. */
int claim_acquire(struct store *st, const struct digest *fp, const struct claim_owner *me, int (*cancelled)(void));

#endif
