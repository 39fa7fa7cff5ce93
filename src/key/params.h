/* params: one value of a TOML or JSON parameters file as a fingerprint
 * part (--param FILE:KEY), so editing an unrelated key of the same file
 * does not re-run the command (as DVC's params do). */
#ifndef CASHET_PARAMS_H
#define CASHET_PARAMS_H

#include "store/store.h"

/* spec is "FILE:KEY" with KEY a dotted path ("train.lr"); the whole file
 * when KEY is empty ("FILE:"). Adds part "param" named spec, whose detail
 * is the value's text when short. */
int params_add(struct store *st, const char *cwd, struct run_record *r, const char *spec);

#endif
