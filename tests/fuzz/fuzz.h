/* fuzz.h: what the libFuzzer harnesses of tests/fuzz/ share.
 *
 * Each harness file defines one target with FUZZ_TARGET(name) { ... } over (data, size): it hands
 * the bytes to one of aqa's readers of outside files and must neither crash, leak nor trip a
 * sanitizer, whatever the bytes.  Built with clang -fsanitize=fuzzer (make fuzz, AQA_LIBFUZZER
 * defined) it is a libFuzzer program; built without, the targets are plain functions that
 * tests/test_fuzz_regress runs over the seed corpora and the saved crash inputs
 * (tests/fuzz/regress/<name>/) in every `make check`.
 *
 * Readers that take a path get the bytes through a file in a per-process scratch folder; those
 * that read several files (annotation loaders, Hugging Face vocabularies) get the input split at
 * FUZZ_SEP into the files' contents, in the order the harness names them (tests/fuzz/seeds.sh
 * joins real files the same way). */
#ifndef AQA_TESTS_FUZZ_H
#define AQA_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "datasets/annotations.h"

#ifdef AQA_LIBFUZZER
#define FUZZ_ENTRY(name)                                                                           \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_##name(data, size); }
#else
#define FUZZ_ENTRY(name)
#endif

#define FUZZ_TARGET(name)                                                                          \
    int fuzz_##name(const uint8_t *data, size_t size);                                             \
    FUZZ_ENTRY(name)                                                                               \
    int fuzz_##name(const uint8_t *data, size_t size)

/* Separates the files of a multi-file input. */
#define FUZZ_SEP "\n--aqa-fuzz-next-file--\n"

/* Path of `name` in this process's scratch folder, written with the n bytes at data; NULL when the
 * file cannot be written.  The folder is removed at exit. */
const char *fuzz_file(const char *name, const void *data, size_t n);
/* The scratch folder itself. */
const char *fuzz_dir(void);
/* Splits data at FUZZ_SEP and writes the parts as the files `names` (n_names of them; missing
 * parts make empty files, extra parts join the last).  Returns 0, or -1 when a file cannot be
 * written. */
int fuzz_files(const uint8_t *data, size_t size, const char *const *names, int n_names);
/* Writes the files of an annotation loader (fuzz_files) and runs the loader on the scratch folder,
 * then the manifest's lookups. */
void fuzz_annotations(aqa_ann_manifest *(*loader)(const char *dir), const uint8_t *data, size_t size,
                      const char *const *names, int n_names);
/* Decodes the input as an image (image/image.h), `magic` (n_magic bytes) put in front when the
 * input does not start with it, so that every input reaches the codec through aqa's reader. */
void fuzz_decode_image(const uint8_t *data, size_t size, const uint8_t *magic, size_t n_magic, const char *name);
/* A NUL-terminated malloc'd copy of the bytes (NULL on allocation failure). */
char *fuzz_text(const uint8_t *data, size_t size);

#endif /* AQA_TESTS_FUZZ_H */
