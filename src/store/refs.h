/* refs: the refs a stored run needs (its run ref and its command line's
 * ref), read and written as git does, for the core's own writer of small
 * runs (store-odb.c) and for the git module alike (see refs.c). */
#ifndef CASHET_REFS_H
#define CASHET_REFS_H

#include "store/store.h"

/* The commit id ref name (e.g. "refs/cashet/runs/<id>") of the repository
 * dir names: its loose file, else its line of packed-refs. 0 found (hex
 * filled), 1 no such ref (or not a commit id: never one of ours), -1 error. */
int store_ref_read(const char *dir, const char *name, char hex[OID_HEX]);
/* Points ref name at the commit id hex through name.lock, created
 * exclusively and renamed into place, as git updates a loose ref. A lock
 * another writer holds is waited for a while (E_BUSY after about 1 s). */
int store_ref_write(const char *dir, const char *name, const char *hex);

/* packed-refs with lines git would not write (a damaged file, which
 * libgit2 then refuses whole): rewritten with the lines that still name a
 * ref and a commit id, the damaged file kept beside it as aside
 * (packed-refs.corrupt-<time>). 1 rewritten (kept refs, dropped lines
 * counted), 0 nothing wrong (or no such file), -1 error. */
int store_refs_salvage(const char *dir, int64_t *kept, int64_t *dropped, struct strbuf *aside);

#endif
