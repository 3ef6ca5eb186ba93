/* fina.c: FINA dive-number parsing, stage/video texts, FineDiving's sub-action vocabulary
 * (rules and wording in fina.h). */
#include "datasets/fina.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static aqa_status bad(const char *number, const char *why) {
    return aqa_fail(AQA_EINVAL, "dive number \"%.20s\": %s", number, why);
}

aqa_status aqa_dive_parse(const char *number, aqa_dive *out) {
    if (!number || !out) return aqa_fail(AQA_EINVAL, "aqa_dive_parse: NULL argument");
    size_t len = strlen(number), nd = 0;
    while (nd < len && isdigit((unsigned char)number[nd])) nd++;
    if (nd < 3 || nd > 4)
        return bad(number, "expected 3 or 4 digits followed by a position letter A-D");
    if (len != nd + 1) {
        if (len == nd) return bad(number, "missing the position letter (A-D)");
        return bad(number, "expected exactly one position letter after the digits");
    }
    char letter = (char)toupper((unsigned char)number[nd]);
    if (letter < 'A' || letter > 'D') {
        char why[64];
        snprintf(why, sizeof why, "position letter '%c' is not A-D", number[nd]);
        return bad(number, why);
    }
    int d[4] = {0};
    for (size_t i = 0; i < nd; i++) d[i] = number[i] - '0';

    aqa_dive v;
    memset(&v, 0, sizeof v);
    v.group = d[0];
    v.position = (aqa_dive_position)(letter - 'A');
    switch (v.group) {
    case 1: case 2: case 3: case 4:
        v.direction = (aqa_dive_direction)v.group;
        if (d[1] > 1) return bad(number, "second digit of a group 1-4 dive must be 0, or 1 for flying");
        v.flying = d[1];
        if (nd == 3) {
            v.half_somersaults = d[2];
        } else {
            v.half_somersaults = 10 * d[2] + d[3];
            if (v.half_somersaults < 10)
                return bad(number, "a 4-digit group 1-4 number needs 10 or more half somersaults");
        }
        if (v.flying && v.half_somersaults < 2)
            return bad(number, "a flying dive needs at least one somersault");
        break;
    case 5:
        if (nd != 4) return bad(number, "a twisting (group 5) dive number has 4 digits");
        if (d[1] < 1 || d[1] > 4) return bad(number, "second digit of a twisting dive must be 1-4");
        if (d[2] < 1) return bad(number, "a twisting dive needs at least half a somersault");
        if (d[3] < 1) return bad(number, "a twisting dive needs at least half a twist");
        v.direction = (aqa_dive_direction)d[1];
        v.half_somersaults = d[2];
        v.half_twists = d[3];
        break;
    case 6:
        if (d[1] < 1 || d[1] > 3)
            return bad(number, "second digit of an armstand dive must be 1 (forward), 2 (back) or 3 (reverse)");
        v.armstand = 1;
        v.direction = (aqa_dive_direction)d[1];
        v.half_somersaults = d[2];
        if (nd == 4) {
            if (d[3] < 1) return bad(number, "fourth digit of a twisting armstand dive must be 1-9");
            v.half_twists = d[3];
        }
        break;
    default:
        return bad(number, "first digit (group) must be 1-6");
    }
    memcpy(v.number, number, nd);
    v.number[nd] = letter;
    v.number[nd + 1] = '\0';
    *out = v;
    return AQA_OK;
}

const char *aqa_dive_direction_name(aqa_dive_direction d) {
    switch (d) {
    case AQA_DIVE_FORWARD: return "forward";
    case AQA_DIVE_BACK: return "back";
    case AQA_DIVE_REVERSE: return "reverse";
    case AQA_DIVE_INWARD: return "inward";
    }
    return NULL;
}

const char *aqa_dive_position_name(aqa_dive_position p) {
    switch (p) {
    case AQA_POS_STRAIGHT: return "straight";
    case AQA_POS_PIKE: return "pike";
    case AQA_POS_TUCK: return "tuck";
    case AQA_POS_FREE: return "free";
    }
    return NULL;
}

char aqa_dive_position_letter(aqa_dive_position p) {
    return p >= AQA_POS_STRAIGHT && p <= AQA_POS_FREE ? (char)('A' + p) : '?';
}

/* "<h/2> <noun>(s)": "3.5 somersaults", "1 twist", "0.5 twist", "0 somersaults" (singular for
 * 0.5 and 1). */
static void halves(char *buf, size_t size, int h, const char *noun) {
    snprintf(buf, size, "%d%s %s%s", h / 2, h % 2 ? ".5" : "", noun, h == 1 || h == 2 ? "" : "s");
}

/* The flight's rotation phrase: "[flying ]3.5 somersaults[ 1.5 twists] tuck". */
static void rotation(char *buf, size_t size, const aqa_dive *v) {
    char som[32], tw[32] = "";
    halves(som, sizeof som, v->half_somersaults, "somersault");
    if (v->half_twists) {
        tw[0] = ' ';
        halves(tw + 1, sizeof tw - 1, v->half_twists, "twist");
    }
    snprintf(buf, size, "%s%s%s %s", v->flying ? "flying " : "", som, tw,
             aqa_dive_position_name(v->position));
}

aqa_status aqa_dive_texts_make(const aqa_dive *v, aqa_dive_texts *out) {
    if (!v || !out) return aqa_fail(AQA_EINVAL, "aqa_dive_texts_make: NULL argument");
    const char *dir = aqa_dive_direction_name(v->direction);
    if (!dir || !aqa_dive_position_name(v->position))
        return aqa_fail(AQA_EINVAL, "aqa_dive_texts_make: dive \"%s\" is not a parsed dive", v->number);
    char rot[128];
    rotation(rot, sizeof rot, v);
    memset(out, 0, sizeof *out);
    int an = v->armstand || v->direction == AQA_DIVE_INWARD; /* "an armstand", "an inward" */
    int n[5];
    n[0] = snprintf(out->takeoff, sizeof out->takeoff, "%s%s take-off", v->armstand ? "armstand " : "", dir);
    n[1] = snprintf(out->flight, sizeof out->flight, "%s flight", rot);
    n[2] = snprintf(out->entry, sizeof out->entry, "entry into the water");
    n[3] = snprintf(out->video, sizeof out->video, "a diving video of %s %s, %s and %s",
                    an ? "an" : "a", out->takeoff, out->flight, out->entry);
    n[4] = snprintf(out->category, sizeof out->category, "%s%s %s", v->armstand ? "armstand " : "",
                    dir, rot);
    for (int i = 0; i < 5; i++) /* cannot happen with the built-in wording; kept as a guard */
        if (n[i] < 0 || n[i] >= AQA_TEXT_MAX)
            return aqa_fail(AQA_EINVAL, "aqa_dive_texts_make: text of \"%s\" too long", v->number);
    return AQA_OK;
}

aqa_status aqa_dive_texts_from_number(const char *number, aqa_dive_texts *out) {
    aqa_dive v;
    aqa_status st = aqa_dive_parse(number, &v);
    if (st) return st;
    return aqa_dive_texts_make(&v, out);
}

const char *aqa_dive_texts_stage(const aqa_dive_texts *t, int stage) {
    if (!t) return NULL;
    switch (stage) {
    case 0: return t->takeoff;
    case 1: return t->flight;
    case 2: return t->entry;
    }
    return NULL;
}

aqa_status aqa_dive_vocabulary(const char *const *numbers, size_t n, aqa_text_set *stages,
                               size_t *stage_ids, aqa_text_set *videos, size_t *video_ids) {
    if ((!numbers && n) || !stages || !videos)
        return aqa_fail(AQA_EINVAL, "aqa_dive_vocabulary: NULL argument");
    aqa_text_set_init(stages);
    aqa_text_set_init(videos);
    aqa_status st = AQA_OK;
    for (size_t i = 0; i < n && !st; i++) {
        aqa_dive_texts t;
        if ((st = aqa_dive_texts_from_number(numbers[i], &t))) break;
        for (int s = 0; s < 3 && !st; s++) {
            size_t id;
            st = aqa_text_set_add_unique(stages, aqa_dive_texts_stage(&t, s), &id);
            if (!st && stage_ids) stage_ids[3 * i + (size_t)s] = id;
        }
        size_t vid;
        if (!st) st = aqa_text_set_add_unique(videos, t.video, &vid);
        if (!st && video_ids) video_ids[i] = vid;
    }
    if (st) {
        aqa_text_set_free(stages);
        aqa_text_set_free(videos);
    }
    return st;
}

/* FineDiving's Sub_action_Types_Table (FORMATS.md).  The names of ids 1-7, 12-17, 19, 21-25,
 * 27, 29-37 are the dataset's; those of 8-11, 18, 20, 26, 28, 38-42 follow FORMATS.md's ranges
 * and the dataset's naming pattern ("Som." for one or less, "Soms." above, "Twist"/"Twists"). */
static const struct {
    const char *name; /* the dataset's label */
    const char *text; /* our frame-level text */
} subactions[AQA_FINEDIVING_SUBACTIONS] = {
    {"Forward", "forward take-off"},
    {"Back", "back take-off"},
    {"Reverse", "reverse take-off"},
    {"Inward", "inward take-off"},
    {"Arm.Forward", "armstand forward take-off"},
    {"Arm.Back", "armstand back take-off"},
    {"Arm.Reverse", "armstand reverse take-off"},
    {"1 Som.Straight", "1 somersault straight"},
    {"1.5 Soms.Straight", "1.5 somersaults straight"},
    {"2 Soms.Straight", "2 somersaults straight"},
    {"2.5 Soms.Straight", "2.5 somersaults straight"},
    {"1 Som.Pike", "1 somersault pike"},
    {"1.5 Soms.Pike", "1.5 somersaults pike"},
    {"2 Soms.Pike", "2 somersaults pike"},
    {"2.5 Soms.Pike", "2.5 somersaults pike"},
    {"3 Soms.Pike", "3 somersaults pike"},
    {"3.5 Soms.Pike", "3.5 somersaults pike"},
    {"4 Soms.Pike", "4 somersaults pike"},
    {"4.5 Soms.Pike", "4.5 somersaults pike"},
    {"1 Som.Tuck", "1 somersault tuck"},
    {"1.5 Soms.Tuck", "1.5 somersaults tuck"},
    {"2 Soms.Tuck", "2 somersaults tuck"},
    {"2.5 Soms.Tuck", "2.5 somersaults tuck"},
    {"3 Soms.Tuck", "3 somersaults tuck"},
    {"3.5 Soms.Tuck", "3.5 somersaults tuck"},
    {"4 Soms.Tuck", "4 somersaults tuck"},
    {"4.5 Soms.Tuck", "4.5 somersaults tuck"},
    {"5.5 Soms.Tuck", "5.5 somersaults tuck"},
    {"0.5 Twist", "0.5 twist"},
    {"1 Twist", "1 twist"},
    {"1.5 Twists", "1.5 twists"},
    {"2 Twists", "2 twists"},
    {"2.5 Twists", "2.5 twists"},
    {"3 Twists", "3 twists"},
    {"3.5 Twists", "3.5 twists"},
    {"Entry", "entry into the water"},
    {"0.5 Som.Pike", "0.5 somersault pike"},
    {"Background", "background"},
    {"0.5 Som.Straight", "0.5 somersault straight"},
    {"0.5 Som.Tuck", "0.5 somersault tuck"},
    {"4 Twists", "4 twists"},
    {"4.5 Twists", "4.5 twists"},
};

const char *aqa_finediving_subaction_name(int id) {
    return id >= 1 && id <= AQA_FINEDIVING_SUBACTIONS ? subactions[id - 1].name : NULL;
}

const char *aqa_finediving_subaction_text(int id) {
    return id >= 1 && id <= AQA_FINEDIVING_SUBACTIONS ? subactions[id - 1].text : NULL;
}

aqa_status aqa_text_set_finediving_subactions(aqa_text_set *out) {
    if (!out) return aqa_fail(AQA_EINVAL, "aqa_text_set_finediving_subactions: out is NULL");
    aqa_text_set_init(out);
    for (int id = 1; id <= AQA_FINEDIVING_SUBACTIONS; id++) {
        aqa_status st = aqa_text_set_add(out, subactions[id - 1].text);
        if (st) {
            aqa_text_set_free(out);
            return st;
        }
    }
    return AQA_OK;
}
