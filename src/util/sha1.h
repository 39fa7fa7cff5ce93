/* sha1: plain SHA-1 (FIPS 180-4), only to check that a loose git object's
 * bytes still hash to its name before it is quarantined. It is not the
 * collision-detecting SHA-1 git writes objects with; that does not matter
 * here: a collision would only make a damaged object look intact, and the
 * run's own XXH3 digest still refuses to replay it. */
#ifndef CASHET_SHA1_H
#define CASHET_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20

struct sha1 {
	uint32_t h[5];
	uint64_t total; /* bytes fed so far */
	unsigned char block[64];
	size_t used; /* bytes waiting in block */
};

void sha1_init(struct sha1 *s);
void sha1_update(struct sha1 *s, const void *data, size_t len);
void sha1_final(struct sha1 *s, unsigned char out[SHA1_LEN]);
/* out: 40 lowercase hex digits and a NUL. */
void sha1_hex(const unsigned char d[SHA1_LEN], char out[41]);

#endif
