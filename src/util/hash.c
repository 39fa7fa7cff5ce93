/* hash: XXH3-128 with a canonical, length-prefixed field encoding.
 * XXH3 is not cryptographic; the fingerprint protects against accidents,
 * not adversaries (git's SHA-1 still names every stored object). */
#include "util/hash.h"
#include "util/util.h"

/* libxxhash's *_dispatch entry points pick AVX2/AVX512 at run time; the
 * plain ones are built for the baseline CPU and hash at ~70% of the speed. */
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#define XXH128_BULK XXH3_128bits_dispatch
#define XXH128_UPDATE XXH3_128bits_update_dispatch
#else
#define XXH128_BULK XXH3_128bits
#define XXH128_UPDATE XXH3_128bits_update
#endif

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void hasher_init(struct hasher *h)
{
	h->st = XXH3_createState();
	if (!h->st)
		abort();
	XXH3_128bits_reset(h->st);
}

void hasher_bytes(struct hasher *h, const void *data, size_t len)
{
	XXH128_UPDATE(h->st, data, len);
}

void hasher_u64(struct hasher *h, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	hasher_bytes(h, b, 8);
}

void hasher_field(struct hasher *h, const void *data, size_t len)
{
	hasher_u64(h, len);
	hasher_bytes(h, data, len);
}

void hasher_str(struct hasher *h, const char *s)
{
	hasher_field(h, s, strlen(s));
}

static void canonical(XXH128_hash_t v, struct digest *out)
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, v);
	memcpy(out->b, c.digest, DIGEST_LEN);
}

void hasher_digest(struct hasher *h, struct digest *out)
{
	canonical(XXH3_128bits_digest(h->st), out);
}

void hasher_free(struct hasher *h)
{
	if (h->st)
		XXH3_freeState(h->st);
	h->st = NULL;
}

void hasher_final(struct hasher *h, struct digest *out)
{
	hasher_digest(h, out);
	hasher_free(h);
}

void digest_of(const void *data, size_t len, struct digest *out)
{
	canonical(XXH128_BULK(data, len), out);
}

/* Reads fd to its end into h (whatever it already holds), adding the
 * bytes to *total: 0, 1 when *halt was set first (halt NULL: never), or
 * -1 with errno. */
static int hash_rest(int fd, struct hasher *h, uint64_t *total, const int *halt)
{
	enum { CHUNK = 1 << 20 };
	char *buf = xmalloc(CHUNK);
	int rc = 0;
	for (;;) {
		if (halt && __atomic_load_n(halt, __ATOMIC_RELAXED)) {
			rc = 1;
			break;
		}
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -1 : 0;
			break;
		}
		hasher_bytes(h, buf, (size_t)n);
		*total += (uint64_t)n;
	}
	int e = errno;
	free(buf);
	errno = e;
	return rc;
}

/* fd read to its end and hashed into out (its length into *size): 0, 1
 * when *halt was set first (out not set), or -1 with errno. */
static int digest_stream(int fd, struct digest *out, uint64_t *size, const int *halt)
{
	struct hasher h;
	uint64_t total = 0;
	hasher_init(&h);
	int rc = hash_rest(fd, &h, &total, halt);
	if (rc != 0) {
		int e = errno;
		hasher_free(&h);
		errno = e;
		return rc;
	}
	hasher_final(&h, out);
	if (size)
		*size = total;
	return 0;
}

int digest_fd(int fd, struct digest *out, uint64_t *size)
{
	return digest_stream(fd, out, size, NULL) < 0 ? err_sys("read failed") : 0;
}

/* A small regular file of `expect` bytes (as fstat said), hashed whole:
 * one read asks for a byte more than that, and a read of a regular file
 * that returns less than it asked for has met the end (an inputs list of
 * 20,000 files pays one read each, not two, and no readahead advice). A
 * file that grew since is streamed on to its end, in bounded memory.
 * 0, or -1 with errno. */
static int digest_small(int fd, size_t expect, struct digest *out, uint64_t *size)
{
	size_t cap = expect + 1, len = 0;
	char *buf = xmalloc(cap);
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -1;
			break;
		}
		len += (size_t)n;
		if (n == 0 || len == cap || len == expect)
			break;
	}
	uint64_t total = len;
	if (rc == 0 && len == cap) {
		struct hasher h;
		hasher_init(&h);
		hasher_bytes(&h, buf, len);
		rc = hash_rest(fd, &h, &total, NULL);
		hasher_final(&h, out);
	} else if (rc == 0)
		digest_of(buf, len, out);
	if (rc == 0 && size)
		*size = total;
	int e = errno;
	free(buf);
	errno = e;
	return rc;
}

int digest_file(const char *path, struct digest *out, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	int rc = 0;
	if (fd < 0)
		return err_sys("cannot open %s", path);
	/* Large regular files are mapped: hashing the page cache in place runs
	 * at memory bandwidth, where read() would copy every byte first. A
	 * window at a time, so that a huge file never counts whole in the
	 * process's resident memory. */
	int regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
	if (regular && sb.st_size >= (1 << 20)) {
		enum { WINDOW = 16 << 20 };
		size_t total = (size_t)sb.st_size, at = 0;
		struct hasher h;
		hasher_init(&h);
		while (at < total) {
			size_t len = total - at < WINDOW ? total - at : WINDOW;
			void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)at);
			if (p == MAP_FAILED)
				break;
			hasher_bytes(&h, p, len);
			munmap(p, len);
			at += len;
		}
		if (at == total) {
			hasher_final(&h, out);
			if (size)
				*size = (uint64_t)total;
			close(fd);
			return 0;
		}
		/* could not map: read it instead */
		hasher_free(&h);
		lseek(fd, 0, SEEK_SET);
	}
	if (regular && sb.st_size < (1 << 20))
		rc = digest_small(fd, (size_t)sb.st_size, out, size);
	else {
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		rc = digest_fd(fd, out, size);
	}
	close(fd);
	if (rc < 0)
		return err_sys("cannot read %s", path);
	return 0;
}

int digest_file_stat_in(struct diropen *dirs, const char *path, const struct stat *sb, struct digest *out)
{
	if (!S_ISREG(sb->st_mode) || sb->st_size >= (1 << 20))
		return digest_file(path, out, NULL);
	int fd = dirs ? diropen_open(dirs, path, O_RDONLY | O_CLOEXEC) : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open %s", path);
	int rc = digest_small(fd, (size_t)sb->st_size, out, NULL);
	close(fd);
	return rc < 0 ? err_sys("cannot read %s", path) : 0;
}

int digest_file_stat(const char *path, const struct stat *sb, struct digest *out)
{
	return digest_file_stat_in(NULL, path, sb, out);
}

int digest_file_halt(const char *path, const struct stat *sb, struct digest *out, const int *halt)
{
	if (sb->st_size < (1 << 20))
		return digest_file_stat(path, sb, out);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open %s", path);
	int rc = digest_stream(fd, out, NULL, halt), e = errno;
	close(fd);
	errno = e;
	return rc < 0 ? err_sys("cannot read %s", path) : rc;
}

void digest_hex(const struct digest *d, char out[DIGEST_HEX])
{
	bytes_to_hex(d->b, DIGEST_LEN, out);
}

/* Each hex digit's value + 1 (0: not one): a branch per digit was 4 ms
 * of indexing the 20,000 oids of a run of as many files. */
static const unsigned char hexval1[256] = {
	['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
	['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval1[(unsigned char)hex[2 * i]], lo = hi ? hexval1[(unsigned char)hex[2 * i + 1]] : 0;
		if (!lo)
			return -1;
		out[i] = (unsigned char)((hi - 1) << 4 | (lo - 1));
	}
	return 0;
}

void bytes_to_hex(const unsigned char *b, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
	out[2 * n] = '\0';
}

int digest_parse(const char *hex, struct digest *out)
{
	if (hex_to_bytes(hex, out->b, DIGEST_LEN) < 0 || hex[2 * DIGEST_LEN])
		return err_set("invalid digest '%s'", hex);
	return 0;
}

int digest_eq(const struct digest *a, const struct digest *b)
{
	return memcmp(a->b, b->b, DIGEST_LEN) == 0;
}
