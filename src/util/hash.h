/* hash: XXH3-128 digests and the length-prefixed encoding every fingerprint
 * is built from. Each field is fed as (u64 little-endian length, bytes), so
 * no two different field lists can produce the same byte stream. */
#ifndef CASHET_HASH_H
#define CASHET_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

#define DIGEST_LEN 16
#define DIGEST_HEX 33 /* 32 hex digits + NUL */

struct digest {
	uint8_t b[DIGEST_LEN];
};

struct hasher {
	XXH3_state_t *st;
};

void hasher_init(struct hasher *h);
void hasher_bytes(struct hasher *h, const void *data, size_t len); /* raw */
void hasher_field(struct hasher *h, const void *data, size_t len); /* length-prefixed */
void hasher_str(struct hasher *h, const char *s);                  /* length-prefixed */
void hasher_u64(struct hasher *h, uint64_t v);
void hasher_digest(struct hasher *h, struct digest *out);
void hasher_final(struct hasher *h, struct digest *out); /* digest + free */
void hasher_free(struct hasher *h);

void digest_of(const void *data, size_t len, struct digest *out);
/* Content digest of a file (streamed). */
int digest_file(const char *path, struct digest *out, uint64_t *size);
int digest_fd(int fd, struct digest *out, uint64_t *size);
/* digest_file of a file the caller has just stat'ed (sb): a small regular
 * file is read without an fstat of its own. Read to its end whatever size
 * sb says, so a file that changed since gives its new content's digest. */
struct stat;
struct diropen;
int digest_file_stat(const char *path, const struct stat *sb, struct digest *out);
/* The same, opened through dirs (util.h). */
int digest_file_stat_in(struct diropen *dirs, const char *path, const struct stat *sb, struct digest *out);
/* The same, read, never mapped (a file truncated under a map kills the
 * process reading it), giving up between megabytes once *halt is set:
 * 0, 1 given up, or -1. */
int digest_file_halt(const char *path, const struct stat *sb, struct digest *out, const int *halt);

void digest_hex(const struct digest *d, char out[DIGEST_HEX]);
int digest_parse(const char *hex, struct digest *out);
/* n bytes from 2n hex digits (either case; what follows is not looked at):
 * 0, or -1 at a non-hex digit. And back, lowercase, NUL-terminated. */
int hex_to_bytes(const char *hex, unsigned char *out, size_t n);
void bytes_to_hex(const unsigned char *b, size_t n, char *out);
int digest_eq(const struct digest *a, const struct digest *b);

#endif
