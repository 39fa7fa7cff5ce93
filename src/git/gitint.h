/* Internals of cashet-git.so: the open repository and the functions the
 * module table (module.c) points at, one file per concern. */
#ifndef CASHET_GITINT_H
#define CASHET_GITINT_H

#include <git2.h>

#include "store/gitmod.h"

/* The repository of the store being worked on, opened by open_repo: one
 * per thread (gitstore.c). `repo` reads it. */
git_repository *git_repo(void);
const char *git_repo_dir(void);
#define repo (git_repo())
int open_repo(const char *dir);
/* err_set() with libgit2's last error. Returns -1. */
int git_fail(const char *what);
/* The same for libgit2's return code rc, which becomes the error's code
 * (GIT_ENOTFOUND: E_NOTFOUND, ...). */
int git_fail_rc(int rc, const char *what);

/* guard.c: a backend that reads loose objects with their sizes checked
 * (libgit2 1.5's reader overflows or spins on a damaged one). gs_guard_odb
 * puts one in front of odb's backends; gs_guard_new makes one alone. */
int gs_guard_new(const char *objects, git_odb_backend **out);
int gs_guard_odb(git_odb *odb, const char *objects);

/* gitstore.c */
int gs_init(const char *dir);
int gs_save_run(const char *dir, struct run_record *r, const char *signing_key, const char *tmpdir,
		void (*blobs_saved)(void *ctx), void *ctx);
struct early_pack *gs_early_begin(const char *dir, struct run_file **files, size_t n);
int gs_early_add(struct early_pack *p, const int *stop);
int gs_early_end(struct early_pack *p, char name[OID_HEX]);
int gs_commit_signature(const char *dir, const char *hash, struct strbuf *sig, struct strbuf *data);
int gs_read_blob(const char *dir, const char *oid, struct strbuf *out);
int gs_list_runs(const char *dir, struct strvec *out);
int gs_load_run(const char *dir, const char *hash, struct strbuf *meta, struct run_record *r);
int gs_delete_run(const char *dir, const char *hash);
int gs_diff_text(const char *a, size_t alen, const char *b, size_t blen, const char *label, int context,
		 struct diff_hunk **hunks, size_t *nhunks, struct strbuf *patch);

/* packw.c: blobs written straight into one new pack. begin, add each
 * file (its blob id set, and its digest and size from what was read; a
 * blob the store has is not written), then
 * finish (published, fsync()ed with sync) or abort (nothing left). */
struct packw;
int gs_packw_begin(const char *dir, struct packw **w);
int gs_packw_add(struct packw *w, struct run_file *f, git_oid *oid);
/* The files the caller will add, in order, before the first, and the
 * number of other objects it will put: the header announces them all as
 * if all were new and different, so that the pack's checksum is taken as
 * it is written (it is read back at finish when another number was
 * added: an object the store or the run had already); and, with helper, a
 * second thread reads, hashes and encodes the files' blobs ahead of
 * gs_packw_add, which takes them (none with one CPU). files must outlive
 * w. A file with an early blob (store.h) is neither planned nor written:
 * gs_packw_add gives its id. */
int gs_packw_plan(struct packw *w, struct run_file **files, size_t n, size_t others, int helper);
/* Puts an object made in memory (a run's meta, its trees), its id set;
 * nothing when this pack or the store's packs have it. A blob of 256 KiB
 * or more goes in stored, not deflated (gc's repack deflates it). */
int gs_packw_put(struct packw *w, git_object_t type, const void *data, size_t len, git_oid *oid);
/* name (when not NULL): the new pack's, pack-<name>.pack */
int gs_packw_finish(struct packw *w, int sync, char name[GIT_OID_HEXSZ + 1]);
/* Adds an object (type commit, tree, blob or tag) with its id: as an
 * offset delta on the base-th entry of w when delta is given and deflates
 * smaller (*deltified set), else whole (a blob stored, not deflated,
 * unless deflating halves it). Entries are numbered in the
 * order added; gs_packw_count() is the next one's number. */
int gs_packw_object(struct packw *w, const unsigned char id[GIT_OID_RAWSZ], git_object_t type, const void *data,
		    size_t len, const struct strbuf *delta, size_t base, int *deltified);
size_t gs_packw_count(const struct packw *w);
/* Whether a blob is worth deflating and looking for a delta of: a run's
 * meta (META_MAGIC), or one that deflating halves. gs_packw_object stores
 * the others. */
int gs_packw_blob_pays(struct packw *w, const void *data, size_t len);
/* Whether w holds object id already. */
int gs_packw_has(struct packw *w, const unsigned char id[GIT_OID_RAWSZ]);
/* autopack.c: writes the objects ids (hex, each once) into a new pack
 * (its name set when not NULL), on disk (fsync()ed, and the directory
 * that names it) before the caller removes anything; with deltas. */
int gs_write_pack(const char *dir, git_odb *odb, const struct strvec *ids, char name[GIT_OID_HEXSZ + 1]);
/* delta.c: git's delta format. An index of a base object (not copied:
 * it must outlive the index), then deltas from it to targets: 0 made (in
 * out), 1 longer than max bytes. */
struct gs_delta_index;
struct gs_delta_index *gs_delta_index_new(const void *src, size_t len);
void gs_delta_index_free(struct gs_delta_index *ix);
int gs_delta_make(const struct gs_delta_index *ix, const void *target, size_t len, size_t max, struct strbuf *out);
/* Copies the entries of another pack (fd) between offsets from and to
 * verbatim, deltas included (an offset delta's base moves with it): n
 * entries, their ids (n x 20 bytes), offsets in that pack and CRCs. 1
 * (nothing added) when one of them is already in w, or an entry's bytes
 * do not match its CRC. */
int gs_packw_append(struct packw *w, int fd, uint64_t from, uint64_t to, const unsigned char *ids,
		    const uint64_t *offsets, const uint32_t *crcs, size_t n);
void gs_packw_abort(struct packw *w);
/* A run with at least this many small files has its blobs packed so. */
#define PACKW_MIN 64

/* copies.c: git_odb_read, but when the copy libgit2 reads first is
 * damaged, the loose one, then each pack's in turn: 0, or <0 with the
 * first copy's error. */
int gs_read_any(git_odb *odb, const git_oid *id, git_odb_object **out);
/* Whether the store's packs give back id whole (read and hash-checked). */
int gs_packed_intact(const git_oid *id);

/* autopack.c */
int gs_autopack(const char *dir, struct autopack_report *rep);

/* packidx.c: whether the index of pack stem (objects/pack/pack-<id>,
 * without .idx or .pack) ends with its own and its pack's checksums: 0
 * intact, 1 damaged (why says how), -1 unreadable (err_set). */
int gs_idx_check(const char *stem, const char **why);
int gs_pack_indexes(const char *dir, int repair, struct strvec *lines);
/* Feeds size bytes of file from offset (UINT64_MAX: to its end) to a new
 * indexer writing into packdir, and commits: 0 (*out holds the indexer,
 * caller frees it even on error), -1 (err_set), GS_INDEX_SHORT (the file
 * ends early) or GS_INDEX_DAMAGED (libgit2's error: the pack is bad). */
enum { GS_INDEX_SHORT = -2, GS_INDEX_DAMAGED = -3 };
int gs_index_pack(const char *packdir, const char *file, uint64_t offset, uint64_t size, git_indexer **out);

/* loose.c */
/* Blobs at least this large are streamed by gs_write_loose, stored
 * uncompressed, and kept loose by gc (repack.c): git's bigFileThreshold. */
#define LOOSE_MIN ((uint64_t)1 << 20)
/* Writes the size bytes read from fd (the file src, named in errors) as a
 * loose blob, hashed and written in O(1) memory; sets *oid and *xxh (the
 * XXH3 digest of the same bytes, in the same pass). */
int gs_write_loose(const char *src, int fd, uint64_t size, git_oid *oid, struct digest *xxh);
/* Whether the store's core.fsyncObjectFiles asks for object files to be
 * fsync()ed before they are renamed into place. */
int gs_want_fsync(void);

/* fsck.c */
int gs_fsck(const char *dir, struct gitmod_fsck *req);
/* fsck's object pass over one run, through which gs_read_run reads its
 * objects on a reader thread: each object read is logged, verified or
 * bad, and the log is replayed in the list's order into the set of
 * objects seen (a bad one reported the first time); gs_fsck then reads
 * only what no run reached. */
struct fsck_pass;
void gs_fsck_seen(struct fsck_pass *p, const git_oid *id);
/* Reads and verifies blob id, appending its content to out (whole:
 * whatever its size; else up to the pass's content_max): 0 appended, 1
 * larger (verified, not appended), -1 unreadable (reported once as a bad
 * object, err_msg() set). */
int gs_fsck_blob(struct fsck_pass *p, const git_oid *id, int whole, struct strbuf *out);
/* gs_load_run of the open repository, its objects read through p when not
 * NULL (its blobs up to p's content_max with their content in data). */
int gs_read_run(const char *hash, struct strbuf *meta, struct run_record *r, struct fsck_pass *p);

/* remote.c */
int gs_remote_config(const char *dir, const char *op, const char *name, const char *url, struct strvec *list);
int gs_push(const char *dir, const char *name, const struct strvec *hashes);
int gs_fetch(const char *dir, const char *name);

/* repack.c */
int gs_repack(const char *dir, const struct strvec *keep_sorted, const struct strvec *lines);
int gs_config(const char *dir, const char *key, const char *set, int unset, struct strbuf *value);

/* gitxfer.c: export and import archives */
int gx_write_pack(const char *dir, const struct strvec *hashes, int fd, uint64_t *bytes);
int gx_stage_pack(const char *dir, const char *file, uint64_t offset, uint64_t size, const char *stage);
int gx_check_run(const char *dir, const char *hash);
int gx_publish_pack(const char *dir, const char *stage, struct strvec *moved);
int gx_create_ref(const char *dir, const char *name, const char *oid);
int gx_delete_ref(const char *dir, const char *name);
int gx_shallow_update(const char *dir, const struct strvec *hashes, int add, struct strvec *changed);

#endif
