/* atomic_file.h: write a file so that readers see either the old content or the complete new one.
 *
 * The content goes to a temporary file `<path>.tmp.<pid>` in the same directory; committing
 * flushes it, fsyncs it, renames it over `<path>` (atomic on POSIX file systems) and fsyncs the
 * directory so that the rename itself survives a crash.  On any error before the rename the
 * temporary file is removed and an existing `<path>` is left untouched, so a crash or a full disk
 * in the middle of saving a checkpoint never destroys the previous one.
 *
 *     ```c
 *     aqa_status save_blob(const char *path, const void *header, size_t n) {
 *         aqa_atomic_file *af;
 *         if (aqa_atomic_open(path, &af) != AQA_OK) return aqa_last_status();
 *         aqa_atomic_write(af, header, n);       // or fprintf(aqa_atomic_stream(af), ...)
 *         return aqa_atomic_commit(af);          // frees af whatever the outcome
 *     }
 *     ```
 *
 * Every write is checked; a failure (a full disk, a file size limit) is reported with the
 * system's reason ("No space left on device") and the path.
 *
 * Limitation: the temporary name depends only on the path and the process id, so two threads of
 * one process must not write the same path at the same time. */
#ifndef AQA_ATOMIC_FILE_H
#define AQA_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_atomic_file aqa_atomic_file;

/* Creates (truncating a stale one) the temporary file for `path`.  Fails with AQA_EIO, naming
 * the path, e.g. when the directory does not exist or is not writable. */
aqa_status aqa_atomic_open(const char *path, aqa_atomic_file **out);

/* The stdio stream of the temporary file, for code that wants a FILE * (libpng, fprintf).
 * Write errors on it are detected by aqa_atomic_commit through ferror(). Do not fclose it. */
FILE *aqa_atomic_stream(aqa_atomic_file *af);

/* Appends n bytes.  On failure records an error naming the final path and returns AQA_EIO; the
 * caller then calls aqa_atomic_abort (commit would also fail and clean up). */
aqa_status aqa_atomic_write(aqa_atomic_file *af, const void *buf, size_t n);

/* Flushes, fsyncs, closes and renames the temporary file over the final path, then fsyncs the
 * directory.  Always frees `af`.  On failure before the rename the temporary file is removed
 * and the old file is intact.  A failure to fsync the directory after the rename is reported
 * (AQA_EIO) although the new file is already in place. */
aqa_status aqa_atomic_commit(aqa_atomic_file *af);

/* Discards the temporary file and frees `af` (NULL is fine); the final path is not touched. */
void aqa_atomic_abort(aqa_atomic_file *af);

/* The temporary path in use (for tests and messages). */
const char *aqa_atomic_temp_path(const aqa_atomic_file *af);

/* One-shot helper: atomically replaces `path` with the n bytes at buf. */
aqa_status aqa_atomic_write_file(const char *path, const void *buf, size_t n);

/* Removes the temporary files a killed writer left in `dir`: names "<file>.tmp.<pid>" whose pid
 * is no process now (a live pid, this process's included, may still be writing: kept).  Call it
 * when a program starts using a folder.  *n_removed (may be NULL) receives how many went. */
aqa_status aqa_atomic_clean_stale(const char *dir, int *n_removed);

#ifdef __cplusplus
}
#endif

#endif /* AQA_ATOMIC_FILE_H */
