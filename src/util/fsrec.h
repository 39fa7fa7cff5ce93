/* fsrec: what a computation consulted of the file system (a stat, a PATH
 * probe, a glob, a directory's entries), recorded as it happens, so that a
 * later process can tell by re-asking the same questions, without redoing
 * the computation, that it would see the same (pipeline/witness.h). One
 * line per question: "OP VALUE PATH". A question this layer cannot ask
 * again, or a file changed too recently for its stat to vouch for its
 * content (git's racy-clean rule), spoils the recording: it is then not
 * used. Off unless fsrec_begin(); not for threads. */
#ifndef CASHET_FSREC_H
#define CASHET_FSREC_H

#include "util/util.h"

/* A file whose ctime is this close to the start of the recording (or
 * later) is racy: a write in the same timestamp granule would leave its
 * stat as it was. Two seconds cover file systems with coarse times. */
#define FSREC_RACY_NS 2000000000LL

/* Starts recording into out (appended to). */
void fsrec_begin(struct strbuf *out);
/* Stops; 1 if the recording can vouch for what was seen, 0 if spoiled. */
int fsrec_end(void);
int fsrec_on(void);
/* Something was consulted (or written) that a recording cannot vouch for. */
void fsrec_spoil(void);

/* What was asked and what the answer was (rc < 0: errno holds why). */
void fsrec_stat(const char *path, int rc, const struct stat *sb);
void fsrec_lstat(const char *path, int rc, const struct stat *sb);
void fsrec_access(const char *path, int mode, int rc);
void fsrec_realpath(const char *path, const char *resolved);
/* glob_at (op 'G') or glob_paths (op 'g') of pattern in cwd, its matches. */
void fsrec_glob(char op, const char *cwd, const char *pattern, int flags, char *const *matches, size_t n);
/* A directory whose entries (names) and mode were as now: an output
 * directory, which a replay chmods (its ctime says nothing). */
void fsrec_dir(const char *path);
/* The type of path (lstat) only: an output's parent directory must not
 * have become a symbolic link. */
void fsrec_type(const char *path);

/* stat_memo(), asking only what path is (a directory, a file, nothing),
 * not its times: a directory the command looked at must still be one, and
 * the project's root, looked at by every shell, changes with each file
 * made in it. */
int fsrec_stat_kind(const char *path, struct stat *sb);

/* A variable of the environment a key read (value: what it found, NULL
 * unset): asked of this process's environment again, unless the value
 * did not come from it (a step's own env table, which its file's bytes
 * vouch for). And the variables matching pattern, listed. */
void fsrec_env(const char *name, const char *value);
void fsrec_env_list(const char *pattern);

/* The calls themselves, recorded (realpath's result is the caller's to free). */
int fsrec_do_stat(const char *path, struct stat *sb);
int fsrec_do_lstat(const char *path, struct stat *sb);
int fsrec_do_access(const char *path, int mode);
char *fsrec_do_realpath(const char *path);

/* Asks one recorded question again (line without its newline): 1 the
 * same answer, 0 another. */
int fsrec_holds(const char *line, size_t len);

#endif
