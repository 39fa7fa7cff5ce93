/* manifest: the text head of an export archive ("cashet-archive 1", a "run
 * <commit id>" line per run, "pack <size>"), followed by the pack itself.
 * Parsing works on bytes already read, never on a file or a store, so the
 * fuzzer and the unit tests call it directly (store-xfer.c does the I/O). */
#ifndef CASHET_MANIFEST_H
#define CASHET_MANIFEST_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define ARCHIVE_MAGIC "cashet-archive"
#define ARCHIVE_VERSION 1
/* The size is written after the pack, over a fixed-width placeholder. */
#define PACK_SIZE_FMT "pack %020" PRIu64 "\n"
/* The longest manifest line, its newline included. */
#define MANIFEST_LINE_MAX 200

/* Parses the manifest at the head of an archive. buf holds the first len
 * bytes of a file of file_size bytes (name is for messages). Returns 0 with
 * the run ids appended to ids (sorted, each listed once), *offset where the
 * pack starts and *size its size, checked to end exactly at file_size; 1
 * when buf ends inside the manifest and len < file_size (read more, call
 * again; ids untouched); <0 with err_msg() saying what is wrong. */
int manifest_parse(const char *buf, size_t len, uint64_t file_size, const char *name, struct strvec *ids,
		   uint64_t *offset, uint64_t *size);

#endif
