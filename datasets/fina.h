/* fina.h: FINA dive numbers ("407C", "5152b", "6245D") and the texts MVLA derives from them, plus
 * FineDiving's sub-action vocabulary.
 *
 * The FINA numbering (FORMATS.md; FINA diving rules, appendix "dive numbering"):
 * - groups 1-4 (forward, back, reverse, inward), 3 digits G F H: F is 1 for a flying dive, else 0;
 *   H counts half somersaults (107 = forward 3.5 somersaults, 112 = forward flying somersault).
 *   Four digits G F HH (HH = 10..19) are accepted for dives of 5 or more somersaults
 *   ("1011" = forward 5.5 somersaults).  H = 0 is accepted because MTL-AQA labels some entries
 *   100B, 200D, 300D (take-offs without a somersault).
 * - group 5 (twisting), 4 digits 5 D H T: D the take-off direction group (1-4), H half
 *   somersaults, T half twists (5152 = forward 2.5 somersaults 1 twist).
 * - group 6 (armstand), 3 digits 6 D H or 4 digits 6 D H T: D the direction (1 forward, 2 back,
 *   3 reverse), H half somersaults, T half twists (626 = armstand back 3 somersaults,
 *   6245 = armstand back 2 somersaults 2.5 twists).
 * - the letter is the position: A straight, B pike, C tuck, D free (case-insensitive).
 *
 * Text wording (the defaults; every set can be replaced from a file, see texts.h):
 * - take-off: "forward take-off", "back take-off", "reverse take-off", "inward take-off",
 *   "armstand forward take-off", ...
 * - flight: "[flying ]<S> somersault(s)[ <T> twist(s)] <position> flight", with S and T as
 *   "0.5", "1", "1.5", ... (singular for 0.5 and 1): "3.5 somersaults tuck flight",
 *   "2.5 somersaults 1.5 twists pike flight", "flying 1.5 somersaults pike flight".
 * - entry: "entry into the water".
 * - video: "a diving video of <a|an> <take-off>, <flight> and <entry>", e.g.
 *   "a diving video of an inward take-off, 3.5 somersaults tuck flight and entry into the water".
 * - category (for the prompt template "a diving video of a [category]"): "[armstand ]<direction>
 *   [flying ]<S> somersault(s)[ <T> twist(s)] <position>", e.g. "inward 3.5 somersaults tuck". */
#ifndef AQA_DATASETS_FINA_H
#define AQA_DATASETS_FINA_H

#include <stddef.h>

#include "datasets/texts.h"
#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_dive_direction {
    AQA_DIVE_FORWARD = 1,
    AQA_DIVE_BACK = 2,
    AQA_DIVE_REVERSE = 3,
    AQA_DIVE_INWARD = 4
} aqa_dive_direction;

typedef enum aqa_dive_position {
    AQA_POS_STRAIGHT = 0, /* A */
    AQA_POS_PIKE = 1,     /* B */
    AQA_POS_TUCK = 2,     /* C */
    AQA_POS_FREE = 3      /* D */
} aqa_dive_position;

typedef struct aqa_dive {
    char number[8];               /* normalised dive number: digits + upper-case letter, "407C" */
    int group;                    /* FINA group, the first digit: 1..6 */
    aqa_dive_direction direction; /* take-off direction (group 1-4 itself; 5 and 6: 2nd digit) */
    int armstand;                 /* 1 for group 6 (armstand take-off), else 0 */
    int flying;                   /* 1 for flying dives (groups 1-4, second digit 1), else 0 */
    int half_somersaults;         /* number of half somersaults (7 = 3.5 somersaults) */
    int half_twists;              /* number of half twists (0 for groups 1-4) */
    aqa_dive_position position;   /* body position, from the letter */
} aqa_dive;

/* Parses a dive number.  Invalid strings fail with AQA_EINVAL and a message quoting the string
 * and saying what is wrong ("dive number \"108E\": position letter 'E' is not A-D"). */
aqa_status aqa_dive_parse(const char *number, aqa_dive *out);

/* Name of a direction ("forward", "back", "reverse", "inward"), position ("straight", "pike",
 * "tuck", "free") or position letter ('A'..'D'); NULL / '?' when out of range. */
const char *aqa_dive_direction_name(aqa_dive_direction d);
const char *aqa_dive_position_name(aqa_dive_position p);
char aqa_dive_position_letter(aqa_dive_position p);

/* The stage- and video-level texts of one dive (see the wording above). */
typedef struct aqa_dive_texts {
    char takeoff[AQA_TEXT_MAX];  /* stage 1: "inward take-off" */
    char flight[AQA_TEXT_MAX];   /* stage 2: "3.5 somersaults tuck flight" */
    char entry[AQA_TEXT_MAX];    /* stage 3: "entry into the water" */
    char video[AQA_TEXT_MAX];    /* the video-level sentence joining the three */
    char category[AQA_TEXT_MAX]; /* the dive's name for prompt templates */
} aqa_dive_texts;

aqa_status aqa_dive_texts_make(const aqa_dive *dive, aqa_dive_texts *out);
/* Parse + texts in one call. */
aqa_status aqa_dive_texts_from_number(const char *number, aqa_dive_texts *out);
/* Stage text i (0 take-off, 1 flight, 2 entry) of `t`, NULL when out of range. */
const char *aqa_dive_texts_stage(const aqa_dive_texts *t, int stage);

/* Stage-level and video-level vocabularies of a list of dive numbers: `stages` receives every
 * distinct stage text (take-offs, flights, the entry) in first-seen order, `videos` every distinct
 * video sentence; stage_ids (n x 3, may be NULL) the index in `stages` of each dive's three
 * stage texts, video_ids (n, may be NULL) the index in `videos` of each dive's sentence. */
aqa_status aqa_dive_vocabulary(const char *const *numbers, size_t n, aqa_text_set *stages,
                               size_t *stage_ids, aqa_text_set *videos, size_t *video_ids);

/* FineDiving's sub-action vocabulary (Sub_action_Types_Table.pkl): ids 1..42. */
#define AQA_FINEDIVING_SUBACTIONS 42
/* The dataset's own name of sub-action `id` ("Inward", "3.5 Soms.Tuck", "Entry"), NULL when the
 * id is not 1..42. */
const char *aqa_finediving_subaction_name(int id);
/* The frame-level text of sub-action `id`: "inward take-off", "3.5 somersaults tuck",
 * "1.5 twists", "entry into the water", "background"; NULL when the id is not 1..42. */
const char *aqa_finediving_subaction_text(int id);
/* The 42 frame-level texts as a set (index id - 1). */
aqa_status aqa_text_set_finediving_subactions(aqa_text_set *out);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_FINA_H */
