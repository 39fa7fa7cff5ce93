/* tree: see tree.h. */
#include "store/tree.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct tree_entry *)a)->path, ((const struct tree_entry *)b)->path);
}

/* A path libgit2 takes into a tree: no empty, ".", "..", ".git" part. */
static int plain_path(const char *p)
{
	for (;;) {
		size_t n = strcspn(p, "/");
		if (!n || (n == 1 && p[0] == '.') || (n == 2 && !strncmp(p, "..", 2)) ||
		    (n == 4 && !strncasecmp(p, ".git", 4)))
			return 0;
		if (!p[n])
			return 1;
		p += n + 1;
	}
}

int tree_sort_check(struct tree_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!plain_path(e[i].path))
			return 1;
	qsort(e, n, sizeof(*e), by_path);
	for (size_t i = 0; i + 1 < n; i++) {
		size_t len = strlen(e[i].path);
		if (!strncmp(e[i].path, e[i + 1].path, len) && (!e[i + 1].path[len] || e[i + 1].path[len] == '/'))
			return 1; /* one name twice, or a file where a directory is */
	}
	return 0;
}

struct tree_entry *tree_find(struct tree_entry *e, size_t n, const char *path)
{
	struct tree_entry key = { .path = path };
	return bsearch(&key, e, n, sizeof(*e), by_path);
}

size_t tree_count(const struct tree_entry *e, size_t n)
{
	/* a directory starts wherever a path's directory part differs from
	 * the one before it, for each of its levels not shared with it */
	size_t trees = 1;
	for (size_t i = 0; i < n; i++) {
		const char *prev = i ? e[i - 1].path : "", *p = e[i].path;
		size_t common = 0; /* bytes of whole directories shared with prev */
		for (size_t k = 0; p[k] && p[k] == prev[k]; k++)
			if (p[k] == '/')
				common = k + 1;
		for (const char *s = p + common; (s = strchr(s, '/')); s++)
			trees++;
	}
	return trees;
}

/* The tree of e[0..n), whose paths all start with a prefix of skip
 * bytes. Byte order of whole paths is git's tree order (a directory sorts
 * as its name and '/'), so a subtree's entries are contiguous. */
/* An entry's "mode name\0id": the usual modes without printf, which was
 * most of writing the trees of a run of 20,000 files. */
static void add_entry(struct strbuf *t, unsigned mode, const char *name, size_t len, const unsigned char *oid)
{
	switch (mode) {
	case 0100644:
		sb_adds(t, "100644 ");
		break;
	case 0100755:
		sb_adds(t, "100755 ");
		break;
	case 040000:
		sb_adds(t, "40000 ");
		break;
	default:
		sb_addf(t, "%o ", mode);
	}
	sb_add(t, name, len);
	sb_add(t, "", 1);
	sb_add(t, (const char *)oid, TREE_OID_RAW);
}

static int write_level(const struct tree_entry *e, size_t n, size_t skip, tree_put_fn put, void *ctx,
		       unsigned char oid[TREE_OID_RAW])
{
	struct strbuf t = STRBUF_INIT;
	int rc = -1;
	for (size_t i = 0; i < n;) {
		const char *name = e[i].path + skip, *slash = strchr(name, '/');
		if (!slash) {
			add_entry(&t, e[i].mode, name, strlen(name), e[i].oid);
			i++;
			continue;
		}
		size_t len = (size_t)(slash - name), j = i;
		while (j < n && !strncmp(e[j].path + skip, name, len + 1))
			j++;
		unsigned char sub[TREE_OID_RAW];
		if (write_level(e + i, j - i, skip + len + 1, put, ctx, sub) < 0)
			goto out;
		add_entry(&t, 040000, name, len, sub);
		i = j;
	}
	rc = put(ctx, t.buf ? t.buf : "", t.len, oid);
out:
	sb_release(&t);
	return rc;
}

int tree_write(const struct tree_entry *e, size_t n, tree_put_fn put, void *ctx, unsigned char oid[TREE_OID_RAW])
{
	return write_level(e, n, 0, put, ctx, oid);
}
