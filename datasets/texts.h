/* texts.h: sets of text annotations (the candidate texts the text encoder sees), prompt templates,
 * and quality-grade texts for datasets without sport terminology (JIGSAWS, Fis-V).
 *
 * A text set is an ordered list of strings; the index of a text is its class id at its
 * granularity.  Every built-in set (FineDiving sub-actions, quality grades, stage texts of dive
 * numbers) can be replaced by a plain text file, one text per line, loaded with
 * aqa_text_set_load. */
#ifndef AQA_DATASETS_TEXTS_H
#define AQA_DATASETS_TEXTS_H

#include <stddef.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest text (bytes, with the NUL) any generator here writes; files may hold longer lines, up to
 * AQA_TEXT_LINE_MAX. */
#define AQA_TEXT_MAX 256
#define AQA_TEXT_LINE_MAX 4096

typedef struct aqa_text_set {
    size_t n;     /* number of texts */
    size_t cap;   /* allocated slots in texts */
    char **texts; /* n malloc'ed NUL-terminated strings */
} aqa_text_set;

/* An empty set (all fields zero is also a valid empty set). */
void aqa_text_set_init(aqa_text_set *set);
void aqa_text_set_free(aqa_text_set *set);

/* Appends a copy of `text` (non-empty, no newline). */
aqa_status aqa_text_set_add(aqa_text_set *set, const char *text);
/* Appends `text` unless an equal text is present; *index (may be NULL) receives its position.
 * Used to build the vocabulary of one granularity from many dives. */
aqa_status aqa_text_set_add_unique(aqa_text_set *set, const char *text, size_t *index);
/* Position of `text` in the set, or -1. */
long aqa_text_set_find(const aqa_text_set *set, const char *text);
/* The i-th text, or NULL when i is out of range. */
const char *aqa_text_set_get(const aqa_text_set *set, size_t i);

/* Loads a plain text file, one text per line ("\n" or "\r\n"; a final newline is optional).
 * Leading and trailing blanks are trimmed.  An empty line is an error (it would silently shift
 * the class ids of every following text), as is a line longer than AQA_TEXT_LINE_MAX or a NUL
 * byte.  expected_n > 0 requires exactly that many texts (e.g. 42 for FineDiving's sub-actions);
 * 0 accepts any positive count.  Errors name the file and line. */
aqa_status aqa_text_set_load(const char *path, size_t expected_n, aqa_text_set *out);
/* Writes the set one text per line (the format aqa_text_set_load reads). */
aqa_status aqa_text_set_save(const aqa_text_set *set, const char *path);

/* Writes `template` with every "[category]" replaced by `category` into buf.  When the
 * placeholder follows the word "a " and the category starts with a vowel, the article becomes
 * "an " ("a diving video of a [category]" + "inward ..." -> "a diving video of an inward ...").
 * A template without "[category]" is an error (AQA_EINVAL), as is a result that does not fit. */
aqa_status aqa_text_fill_template(const char *template_, const char *category, char *buf,
                                  size_t size);

/* The default prompt template of the paper. */
#define AQA_DIVING_TEMPLATE "a diving video of a [category]"

/* Quality grades for datasets without terminology: score bins of equal width over [lo, hi]. */
typedef enum aqa_quality_grade {
    AQA_GRADE_POOR = 0,
    AQA_GRADE_FAIR = 1,
    AQA_GRADE_GOOD = 2,
    AQA_GRADE_EXCELLENT = 3
} aqa_quality_grade;
#define AQA_GRADE_COUNT 4

/* "poor", "fair", "good", "excellent" (NULL when out of range). */
const char *aqa_quality_grade_name(int grade);
/* Grade of `score` on [lo, hi] (lo < hi): [lo, lo + w) poor, ..., [hi - w, hi] excellent with
 * w = (hi - lo) / 4; scores outside [lo, hi] are clamped to the end grades (a prediction may
 * leave the range).  Non-finite inputs or lo >= hi fail with AQA_EINVAL. */
aqa_status aqa_quality_grade_of(double score, double lo, double hi, aqa_quality_grade *grade);
/* "a video of a poor knot tying" / "a video of an excellent knot tying" for `action`. */
aqa_status aqa_quality_text(int grade, const char *action, char *buf, size_t size);
/* "inward take-off, of poor quality": a descriptive text (a dive's stage or video text) with a
 * grade appended, the "+ Quality Text" setting of the paper's Table 5. */
aqa_status aqa_quality_describe(int grade, const char *text, char *buf, size_t size);
/* The 4 grade texts of `action`, in grade order. */
aqa_status aqa_text_set_quality(const char *action, aqa_text_set *out);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_TEXTS_H */
