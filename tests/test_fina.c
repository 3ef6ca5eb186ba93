/* test_fina.c: FINA dive-number parsing on every MTL-AQA dive number (golden interpretations
 * computed independently by scripts/gen_fina_golden.py, and MTL-AQA's own per-dive fields), on
 * common FineDiving numbers derived by hand, the stage/video texts, FineDiving's sub-action
 * vocabulary, quality grades, prompt templates and text-set files. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "datasets/fina.h"
#include "datasets/texts.h"
#include "base/error.h"
#include "tests/testlib.h"

/* MTL-AQA's codes (final_annotations_dict.pkl): position 0 free, 1 pike, 2 tuck; rotation_type
 * 0 back, 1 forward, 2 inward, 3 reverse (the direction of the take-off, armstand included). */
static int mtl_position(aqa_dive_position p) {
    switch (p) {
    case AQA_POS_FREE: return 0;
    case AQA_POS_PIKE: return 1;
    case AQA_POS_TUCK: return 2;
    case AQA_POS_STRAIGHT: return -2; /* MTL-AQA has no straight dives */
    }
    return -3;
}

static int mtl_rotation(aqa_dive_direction d) {
    switch (d) {
    case AQA_DIVE_BACK: return 0;
    case AQA_DIVE_FORWARD: return 1;
    case AQA_DIVE_INWARD: return 2;
    case AQA_DIVE_REVERSE: return 3;
    }
    return -3;
}

static void test_mtl_aqa_numbers(void) {
    const char *path = test_data_path("fina/dive_numbers.txt");
    FILE *f = fopen(path, "r");
    if (!f) {
        SKIP("%.200s missing (scripts/gen_fina_golden.py writes it)", path);
        return;
    }
    char line[512];
    int numbers = 0, dives = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char num[16], letter;
        int g, dir, arm, fly, hs, ht, mp, ma, mr, mss, mtw, count;
        int k = sscanf(line, "%15s %d %d %d %d %d %d %c | %d %d %d %d %d | %d", num, &g, &dir, &arm,
                       &fly, &hs, &ht, &letter, &mp, &ma, &mr, &mss, &mtw, &count);
        CHECK_MSG(k == 14, "malformed golden line: %s", line);
        if (k != 14) continue;
        numbers++;
        dives += count;
        aqa_dive v;
        aqa_status st = aqa_dive_parse(num, &v);
        CHECK_MSG(st == AQA_OK, "%s: %s", num, aqa_last_error());
        if (st) continue;
        /* against the independent FINA interpretation */
        CHECK_STR(v.number, num);
        CHECK_EQ_INT(v.group, g);
        CHECK_EQ_INT(v.direction, dir);
        CHECK_EQ_INT(v.armstand, arm);
        CHECK_EQ_INT(v.flying, fly);
        CHECK_EQ_INT(v.half_somersaults, hs);
        CHECK_EQ_INT(v.half_twists, ht);
        CHECK_EQ_INT(aqa_dive_position_letter(v.position), letter);
        /* against what MTL-AQA's annotators recorded for this number */
        CHECK_MSG(mp >= 0, "%s: MTL-AQA's entries disagree among themselves", num);
        CHECK_EQ_INT(mtl_position(v.position), mp);
        CHECK_EQ_INT(v.armstand, ma);
        CHECK_EQ_INT(mtl_rotation(v.direction), mr);
        CHECK_EQ_INT(v.half_somersaults, mss);
        CHECK_EQ_INT(v.half_twists, mtw);
        /* lower-case letter: same dive */
        char lower[16];
        snprintf(lower, sizeof lower, "%s", num);
        lower[strlen(lower) - 1] = (char)tolower((unsigned char)lower[strlen(lower) - 1]);
        aqa_dive w;
        CHECK(aqa_dive_parse(lower, &w) == AQA_OK);
        CHECK(memcmp(&v, &w, sizeof v) == 0);
        /* every dive number has its texts */
        aqa_dive_texts t;
        CHECK(aqa_dive_texts_make(&v, &t) == AQA_OK);
        CHECK(strstr(t.video, t.takeoff) && strstr(t.video, t.flight) && strstr(t.video, t.entry));
    }
    fclose(f);
    CHECK_EQ_INT(numbers, 58); /* FORMATS.md: 58 distinct dive numbers */
    CHECK_EQ_INT(dives, 1412);
}

/* Common FineDiving / FINA numbers with their meaning worked out by hand from the rules. */
static void test_finediving_numbers(void) {
    static const struct {
        const char *num;
        int group, dir, armstand, flying, hs, ht;
        char letter;
    } cases[] = {
        {"107B", 1, 1, 0, 0, 7, 0, 'B'},  {"109C", 1, 1, 0, 0, 9, 0, 'C'},
        {"109B", 1, 1, 0, 0, 9, 0, 'B'},  {"205B", 2, 2, 0, 0, 5, 0, 'B'},
        {"207C", 2, 2, 0, 0, 7, 0, 'C'},  {"207B", 2, 2, 0, 0, 7, 0, 'B'},
        {"209C", 2, 2, 0, 0, 9, 0, 'C'},  {"305B", 3, 3, 0, 0, 5, 0, 'B'},
        {"307C", 3, 3, 0, 0, 7, 0, 'C'},  {"307B", 3, 3, 0, 0, 7, 0, 'B'},
        {"309C", 3, 3, 0, 0, 9, 0, 'C'},  {"405B", 4, 4, 0, 0, 5, 0, 'B'},
        {"407C", 4, 4, 0, 0, 7, 0, 'C'},  {"407B", 4, 4, 0, 0, 7, 0, 'B'},
        {"409C", 4, 4, 0, 0, 9, 0, 'C'},  {"5152B", 5, 1, 0, 0, 5, 2, 'B'},
        {"5154B", 5, 1, 0, 0, 5, 4, 'B'}, {"5156B", 5, 1, 0, 0, 5, 6, 'B'},
        {"5172B", 5, 1, 0, 0, 7, 2, 'B'}, {"5132D", 5, 1, 0, 0, 3, 2, 'D'},
        {"5136D", 5, 1, 0, 0, 3, 6, 'D'}, {"5231D", 5, 2, 0, 0, 3, 1, 'D'},
        {"5235D", 5, 2, 0, 0, 3, 5, 'D'}, {"5251B", 5, 2, 0, 0, 5, 1, 'B'},
        {"5253B", 5, 2, 0, 0, 5, 3, 'B'}, {"5255B", 5, 2, 0, 0, 5, 5, 'B'},
        {"5335D", 5, 3, 0, 0, 3, 5, 'D'}, {"5337D", 5, 3, 0, 0, 3, 7, 'D'},
        {"5353B", 5, 3, 0, 0, 5, 3, 'B'}, {"5355B", 5, 3, 0, 0, 5, 5, 'B'},
        {"5411B", 5, 4, 0, 0, 1, 1, 'B'}, {"612B", 6, 1, 1, 0, 2, 0, 'B'},
        {"614B", 6, 1, 1, 0, 4, 0, 'B'},  {"6142D", 6, 1, 1, 0, 4, 2, 'D'},
        {"626B", 6, 2, 1, 0, 6, 0, 'B'},  {"626C", 6, 2, 1, 0, 6, 0, 'C'},
        {"6241B", 6, 2, 1, 0, 4, 1, 'B'}, {"6243D", 6, 2, 1, 0, 4, 3, 'D'},
        {"6245D", 6, 2, 1, 0, 4, 5, 'D'}, {"636C", 6, 3, 1, 0, 6, 0, 'C'},
        {"112B", 1, 1, 0, 1, 2, 0, 'B'},  {"113C", 1, 1, 0, 1, 3, 0, 'C'},
        {"1011C", 1, 1, 0, 0, 11, 0, 'C'}, {"101A", 1, 1, 0, 0, 1, 0, 'A'},
        {"407c", 4, 4, 0, 0, 7, 0, 'C'},  {"5253b", 5, 2, 0, 0, 5, 3, 'B'},
        {"101B", 1, 1, 0, 0, 1, 0, 'B'},  {"103B", 1, 1, 0, 0, 3, 0, 'B'},
        {"105B", 1, 1, 0, 0, 5, 0, 'B'},  {"107C", 1, 1, 0, 0, 7, 0, 'C'},
        {"205C", 2, 2, 0, 0, 5, 0, 'C'},  {"303C", 3, 3, 0, 0, 3, 0, 'C'},
        {"305C", 3, 3, 0, 0, 5, 0, 'C'},  {"401B", 4, 4, 0, 0, 1, 0, 'B'},
        {"403B", 4, 4, 0, 0, 3, 0, 'B'},  {"405C", 4, 4, 0, 0, 5, 0, 'C'},
        {"5233D", 5, 2, 0, 0, 3, 3, 'D'}, {"5237D", 5, 2, 0, 0, 3, 7, 'D'},
        {"5331D", 5, 3, 0, 0, 3, 1, 'D'},
    };
    /* FineDiving action types as its annotations spell them (lower-case letter); 47 of its 52,
     * the ones seen in public code that indexes the dataset.  Each must be in the table above. */
    static const char *const finediving[] = {
        "407c",  "5253b", "107b",  "6245d", "207c",  "5152b", "5255b", "6243d", "109c",  "626c",
        "307c",  "207b",  "5156b", "407b",  "409c",  "6142d", "305c",  "405b",  "205b",  "5235d",
        "612b",  "103b",  "403b",  "101b",  "5331d", "5132d", "614b",  "5231d", "5154b", "5251b",
        "107c",  "105b",  "6241b", "5237d", "5353b", "5337d", "5355b", "405c",  "5335d", "5172b",
        "636c",  "205c",  "626b",  "401b",  "109b",  "303c",  "5233d"};
    for (size_t i = 0; i < sizeof finediving / sizeof *finediving; i++) {
        int known = 0;
        for (size_t j = 0; j < sizeof cases / sizeof *cases; j++)
            known |= strcasecmp(finediving[i], cases[j].num) == 0;
        CHECK_MSG(known, "%s has no hand-derived expectation", finediving[i]);
        aqa_dive_texts t;
        CHECK_MSG(aqa_dive_texts_from_number(finediving[i], &t) == AQA_OK, "%s: %s", finediving[i],
                  aqa_last_error());
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        aqa_dive v;
        aqa_status st = aqa_dive_parse(cases[i].num, &v);
        CHECK_MSG(st == AQA_OK, "%s: %s", cases[i].num, aqa_last_error());
        if (st) continue;
        CHECK_MSG(v.group == cases[i].group && (int)v.direction == cases[i].dir &&
                      v.armstand == cases[i].armstand && v.flying == cases[i].flying &&
                      v.half_somersaults == cases[i].hs && v.half_twists == cases[i].ht &&
                      aqa_dive_position_letter(v.position) == cases[i].letter,
                  "%s parsed as group %d dir %d arm %d fly %d hs %d ht %d pos %c", cases[i].num,
                  v.group, v.direction, v.armstand, v.flying, v.half_somersaults, v.half_twists,
                  aqa_dive_position_letter(v.position));
    }
    aqa_dive v;
    CHECK(aqa_dive_parse("407c", &v) == AQA_OK);
    CHECK_STR(v.number, "407C");
}

static void test_invalid_numbers(void) {
    static const struct {
        const char *num, *why;
    } bad[] = {
        {"", "3 or 4 digits"},         {"40", "3 or 4 digits"},
        {"407", "missing the position letter"}, {"407E", "'E' is not A-D"},
        {"407CC", "exactly one position letter"}, {"707C", "group"},
        {"0107C", "group"},            {"5052B", "second digit of a twisting"},
        {"5150B", "half a twist"},     {"5105B", "half a somersault"},
        {"525B", "4 digits"},          {"427C", "0, or 1 for flying"},
        {"6045D", "armstand"},         {"6401A", "armstand"},
        {"110B", "flying"},            {"1005C", "10 or more"},
        {" 407C", "3 or 4 digits"},    {"407 C", "exactly one position letter"},
        {"abc", "3 or 4 digits"},      {"12345B", "3 or 4 digits"},
        {"6240D", "fourth digit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        aqa_dive v;
        aqa_clear_error();
        aqa_status st = aqa_dive_parse(bad[i].num, &v);
        CHECK_MSG(st == AQA_EINVAL, "\"%s\" was accepted", bad[i].num);
        char quoted[32];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i].num);
        CHECK_MSG(strstr(aqa_last_error(), quoted) != NULL, "message \"%s\" does not quote %s",
                  aqa_last_error(), quoted);
        CHECK_MSG(strstr(aqa_last_error(), bad[i].why) != NULL, "message \"%s\" lacks \"%s\"",
                  aqa_last_error(), bad[i].why);
    }
    aqa_dive v;
    CHECK(aqa_dive_parse(NULL, &v) == AQA_EINVAL);
    aqa_dive_texts t;
    CHECK(aqa_dive_texts_from_number("999Z", &t) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "999Z") != NULL);
}

static void test_dive_texts(void) {
    static const struct {
        const char *num, *takeoff, *flight, *video, *category;
    } cases[] = {
        {"407C", "inward take-off", "3.5 somersaults tuck flight",
         "a diving video of an inward take-off, 3.5 somersaults tuck flight and entry into the water",
         "inward 3.5 somersaults tuck"},
        {"5152B", "forward take-off", "2.5 somersaults 1 twist pike flight",
         "a diving video of a forward take-off, 2.5 somersaults 1 twist pike flight and entry into "
         "the water",
         "forward 2.5 somersaults 1 twist pike"},
        {"6245D", "armstand back take-off", "2 somersaults 2.5 twists free flight",
         "a diving video of an armstand back take-off, 2 somersaults 2.5 twists free flight and "
         "entry into the water",
         "armstand back 2 somersaults 2.5 twists free"},
        {"626C", "armstand back take-off", "3 somersaults tuck flight",
         "a diving video of an armstand back take-off, 3 somersaults tuck flight and entry into the "
         "water",
         "armstand back 3 somersaults tuck"},
        {"6241B", "armstand back take-off", "2 somersaults 0.5 twist pike flight",
         "a diving video of an armstand back take-off, 2 somersaults 0.5 twist pike flight and "
         "entry into the water",
         "armstand back 2 somersaults 0.5 twist pike"},
        {"201B", "back take-off", "0.5 somersault pike flight",
         "a diving video of a back take-off, 0.5 somersault pike flight and entry into the water",
         "back 0.5 somersault pike"},
        {"5337D", "reverse take-off", "1.5 somersaults 3.5 twists free flight",
         "a diving video of a reverse take-off, 1.5 somersaults 3.5 twists free flight and entry "
         "into the water",
         "reverse 1.5 somersaults 3.5 twists free"},
        {"112B", "forward take-off", "flying 1 somersault pike flight",
         "a diving video of a forward take-off, flying 1 somersault pike flight and entry into the "
         "water",
         "forward flying 1 somersault pike"},
        {"300D", "reverse take-off", "0 somersaults free flight",
         "a diving video of a reverse take-off, 0 somersaults free flight and entry into the water",
         "reverse 0 somersaults free"},
        {"103a", "forward take-off", "1.5 somersaults straight flight",
         "a diving video of a forward take-off, 1.5 somersaults straight flight and entry into the "
         "water",
         "forward 1.5 somersaults straight"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        aqa_dive_texts t;
        aqa_status st = aqa_dive_texts_from_number(cases[i].num, &t);
        CHECK_MSG(st == AQA_OK, "%s: %s", cases[i].num, aqa_last_error());
        if (st) continue;
        CHECK_STR(t.takeoff, cases[i].takeoff);
        CHECK_STR(t.flight, cases[i].flight);
        CHECK_STR(t.entry, "entry into the water");
        CHECK_STR(t.video, cases[i].video);
        CHECK_STR(t.category, cases[i].category);
        CHECK_STR(aqa_dive_texts_stage(&t, 0), t.takeoff);
        CHECK_STR(aqa_dive_texts_stage(&t, 1), t.flight);
        CHECK_STR(aqa_dive_texts_stage(&t, 2), t.entry);
        CHECK(aqa_dive_texts_stage(&t, 3) == NULL);
    }
}

static void test_prompt_template(void) {
    char buf[AQA_TEXT_MAX];
    CHECK(aqa_text_fill_template(AQA_DIVING_TEMPLATE, "inward 3.5 somersaults tuck", buf, sizeof buf) == AQA_OK);
    CHECK_STR(buf, "a diving video of an inward 3.5 somersaults tuck");
    CHECK(aqa_text_fill_template(AQA_DIVING_TEMPLATE, "forward 4.5 somersaults tuck", buf, sizeof buf) == AQA_OK);
    CHECK_STR(buf, "a diving video of a forward 4.5 somersaults tuck");
    CHECK(aqa_text_fill_template("[category] dive, like a [category]", "armstand", buf, sizeof buf) == AQA_OK);
    CHECK_STR(buf, "armstand dive, like an armstand");
    CHECK(aqa_text_fill_template("a type of [category]", "armstand", buf, sizeof buf) == AQA_OK);
    CHECK_STR(buf, "a type of armstand"); /* only an "a" right before the category changes */
    CHECK(aqa_text_fill_template("data [category]", "inward", buf, sizeof buf) == AQA_OK);
    CHECK_STR(buf, "data inward"); /* "a" inside a word is not an article */
    CHECK(aqa_text_fill_template("a diving video", "inward", buf, sizeof buf) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "[category]") != NULL);
    CHECK(aqa_text_fill_template(AQA_DIVING_TEMPLATE, "inward", buf, 10) == AQA_EINVAL);
    aqa_dive_texts t;
    CHECK(aqa_dive_texts_from_number("5255B", &t) == AQA_OK);
    CHECK(aqa_text_fill_template(AQA_DIVING_TEMPLATE, t.category, buf, sizeof buf) == AQA_OK);
    CHECK_STR(buf, "a diving video of a back 2.5 somersaults 2.5 twists pike");
}

static void test_vocabulary(void) {
    const char *nums[] = {"407C", "407B", "5152B", "407c"};
    aqa_text_set stages, videos;
    size_t sid[12], vid[4];
    CHECK(aqa_dive_vocabulary(nums, 4, &stages, sid, &videos, vid) == AQA_OK);
    CHECK_EQ_INT(stages.n, 6);
    CHECK_EQ_INT(videos.n, 3);
    CHECK_STR(aqa_text_set_get(&stages, 0), "inward take-off");
    CHECK_STR(aqa_text_set_get(&stages, 1), "3.5 somersaults tuck flight");
    CHECK_STR(aqa_text_set_get(&stages, 2), "entry into the water");
    CHECK_STR(aqa_text_set_get(&stages, 3), "3.5 somersaults pike flight");
    CHECK_STR(aqa_text_set_get(&stages, 4), "forward take-off");
    CHECK_STR(aqa_text_set_get(&stages, 5), "2.5 somersaults 1 twist pike flight");
    const size_t want_sid[12] = {0, 1, 2, 0, 3, 2, 4, 5, 2, 0, 1, 2};
    for (int i = 0; i < 12; i++) CHECK_EQ_INT(sid[i], want_sid[i]);
    CHECK_EQ_INT(vid[0], 0);
    CHECK_EQ_INT(vid[1], 1);
    CHECK_EQ_INT(vid[2], 2);
    CHECK_EQ_INT(vid[3], 0);
    aqa_text_set_free(&stages);
    aqa_text_set_free(&videos);
    const char *bad[] = {"407C", "407X"};
    CHECK(aqa_dive_vocabulary(bad, 2, &stages, NULL, &videos, NULL) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "407X") != NULL);
    CHECK_EQ_INT(stages.n, 0);
}

static void test_finediving_subactions(void) {
    CHECK_STR(aqa_finediving_subaction_name(1), "Forward");
    CHECK_STR(aqa_finediving_subaction_name(4), "Inward");
    CHECK_STR(aqa_finediving_subaction_name(5), "Arm.Forward");
    CHECK_STR(aqa_finediving_subaction_name(12), "1 Som.Pike");
    CHECK_STR(aqa_finediving_subaction_name(15), "2.5 Soms.Pike");
    CHECK_STR(aqa_finediving_subaction_name(19), "4.5 Soms.Pike");
    CHECK_STR(aqa_finediving_subaction_name(21), "1.5 Soms.Tuck");
    CHECK_STR(aqa_finediving_subaction_name(25), "3.5 Soms.Tuck");
    CHECK_STR(aqa_finediving_subaction_name(27), "4.5 Soms.Tuck");
    CHECK_STR(aqa_finediving_subaction_name(29), "0.5 Twist");
    CHECK_STR(aqa_finediving_subaction_name(31), "1.5 Twists");
    CHECK_STR(aqa_finediving_subaction_name(35), "3.5 Twists");
    CHECK_STR(aqa_finediving_subaction_name(36), "Entry");
    CHECK_STR(aqa_finediving_subaction_name(37), "0.5 Som.Pike");
    CHECK_STR(aqa_finediving_subaction_name(38), "Background");
    CHECK_STR(aqa_finediving_subaction_name(41), "4 Twists");
    CHECK_STR(aqa_finediving_subaction_name(42), "4.5 Twists");
    CHECK(aqa_finediving_subaction_name(0) == NULL);
    CHECK(aqa_finediving_subaction_name(43) == NULL);
    CHECK(aqa_finediving_subaction_text(43) == NULL);
    CHECK_STR(aqa_finediving_subaction_text(4), "inward take-off");
    CHECK_STR(aqa_finediving_subaction_text(6), "armstand back take-off");
    CHECK_STR(aqa_finediving_subaction_text(25), "3.5 somersaults tuck");
    CHECK_STR(aqa_finediving_subaction_text(29), "0.5 twist");
    CHECK_STR(aqa_finediving_subaction_text(36), "entry into the water");
    CHECK_STR(aqa_finediving_subaction_text(38), "background");
    /* the frame-level take-off and entry texts are the stage texts of the dive numbers, so a
     * frame's label text equals the text of its stage */
    aqa_dive_texts t;
    CHECK(aqa_dive_texts_from_number("6243D", &t) == AQA_OK);
    CHECK_STR(aqa_finediving_subaction_text(6), t.takeoff);
    CHECK_STR(aqa_finediving_subaction_text(36), t.entry);
    /* every somersault/twist label's count and position agree with its text */
    for (int id = 1; id <= AQA_FINEDIVING_SUBACTIONS; id++) {
        const char *name = aqa_finediving_subaction_name(id), *text = aqa_finediving_subaction_text(id);
        CHECK(name && text);
        if (!name || !text || !isdigit((unsigned char)name[0])) continue;
        double a = atof(name), b = atof(text);
        CHECK_MSG(a == b, "id %d: \"%s\" vs \"%s\"", id, name, text);
        const char *kinds[][2] = {{"Pike", "pike"}, {"Tuck", "tuck"}, {"Straight", "straight"},
                                  {"Twist", "twist"}};
        for (int k = 0; k < 4; k++)
            CHECK_MSG(!strstr(name, kinds[k][0]) == !strstr(text, kinds[k][1]), "id %d: \"%s\" vs \"%s\"",
                      id, name, text);
    }
    aqa_text_set s;
    CHECK(aqa_text_set_finediving_subactions(&s) == AQA_OK);
    CHECK_EQ_INT(s.n, 42);
    for (size_t i = 0; i < s.n; i++)
        for (size_t j = i + 1; j < s.n; j++)
            CHECK_MSG(strcmp(s.texts[i], s.texts[j]) != 0, "duplicate text %s", s.texts[i]);
    aqa_text_set_free(&s);
}

static void test_quality_grades(void) {
    /* JIGSAWS GRS range 6..30: bins of width 6 */
    const struct {
        double score;
        int grade;
    } cases[] = {{6, 0},  {11.99, 0}, {12, 1}, {17.9, 1}, {18, 2}, {23.9, 2},
                 {24, 3}, {30, 3},    {45, 3}, {0, 0},    {-1e9, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        aqa_quality_grade g = (aqa_quality_grade)-1;
        CHECK(aqa_quality_grade_of(cases[i].score, 6, 30, &g) == AQA_OK);
        CHECK_MSG((int)g == cases[i].grade, "score %g -> grade %d, want %d", cases[i].score, g,
                  cases[i].grade);
    }
    aqa_quality_grade g;
    CHECK(aqa_quality_grade_of(5, 30, 6, &g) == AQA_EINVAL);
    CHECK(aqa_quality_grade_of(5, 6, 6, &g) == AQA_EINVAL);
    CHECK(aqa_quality_grade_of(NAN, 6, 30, &g) == AQA_EINVAL);
    char buf[AQA_TEXT_MAX];
    CHECK(aqa_quality_text(AQA_GRADE_POOR, "knot tying", buf, sizeof buf) == AQA_OK);
    CHECK_STR(buf, "a video of a poor knot tying");
    CHECK(aqa_quality_text(AQA_GRADE_EXCELLENT, "knot tying", buf, sizeof buf) == AQA_OK);
    CHECK_STR(buf, "a video of an excellent knot tying");
    CHECK(aqa_quality_text(4, "knot tying", buf, sizeof buf) == AQA_EINVAL);
    CHECK(aqa_quality_text(0, "", buf, sizeof buf) == AQA_EINVAL);
    CHECK(aqa_quality_text(0, "figure skating", buf, 12) == AQA_EINVAL);
    aqa_text_set s;
    CHECK(aqa_text_set_quality("figure skating", &s) == AQA_OK);
    CHECK_EQ_INT(s.n, 4);
    CHECK_STR(aqa_text_set_get(&s, 1), "a video of a fair figure skating");
    CHECK_STR(aqa_text_set_get(&s, 2), "a video of a good figure skating");
    CHECK(aqa_text_set_get(&s, 4) == NULL);
    aqa_text_set_free(&s);
}

static const char *write_temp(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/aqa_test_fina_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    close(fd);
    return w == (ssize_t)len ? path : NULL;
}

static void test_text_set_files(void) {
    aqa_text_set s;
    const char *p = write_temp("a video of a poor suturing\r\n  a video of a fair suturing  \n"
                               "a video of a good suturing\na video of an excellent suturing");
    CHECK(p != NULL);
    CHECK(aqa_text_set_load(p, 4, &s) == AQA_OK);
    CHECK_EQ_INT(s.n, 4);
    CHECK_STR(aqa_text_set_get(&s, 0), "a video of a poor suturing");
    CHECK_STR(aqa_text_set_get(&s, 1), "a video of a fair suturing");
    CHECK_STR(aqa_text_set_get(&s, 3), "a video of an excellent suturing");
    CHECK_EQ_INT(aqa_text_set_find(&s, "a video of a good suturing"), 2);
    CHECK_EQ_INT(aqa_text_set_find(&s, "nothing"), -1);
    aqa_text_set_free(&s);
    /* wrong count */
    CHECK(aqa_text_set_load(p, 42, &s) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), "expected 42") != NULL && strstr(aqa_last_error(), p) != NULL);
    CHECK_EQ_INT(s.n, 0);
    unlink(p);
    /* an empty line in the middle */
    p = write_temp("one\n\nthree\n");
    CHECK(aqa_text_set_load(p, 0, &s) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), ":2: empty line") != NULL);
    unlink(p);
    /* an empty file, a missing file */
    p = write_temp("");
    CHECK(aqa_text_set_load(p, 0, &s) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), "empty") != NULL);
    unlink(p);
    CHECK(aqa_text_set_load("/nonexistent/texts.txt", 0, &s) == AQA_EIO);
    CHECK(strstr(aqa_last_error(), "/nonexistent/texts.txt") != NULL);
    /* replacing the FineDiving vocabulary: save the built-in set, load it back with its count */
    aqa_text_set fd, back;
    char path[] = "/tmp/aqa_test_fina_set_XXXXXX";
    int fdsc = mkstemp(path);
    CHECK(fdsc >= 0);
    close(fdsc);
    CHECK(aqa_text_set_finediving_subactions(&fd) == AQA_OK);
    CHECK(aqa_text_set_save(&fd, path) == AQA_OK);
    CHECK(aqa_text_set_load(path, AQA_FINEDIVING_SUBACTIONS, &back) == AQA_OK);
    CHECK_EQ_INT(back.n, fd.n);
    for (size_t i = 0; i < back.n && i < fd.n; i++) CHECK_STR(back.texts[i], fd.texts[i]);
    aqa_text_set_free(&fd);
    aqa_text_set_free(&back);
    unlink(path);
    /* building sets */
    aqa_text_set b;
    aqa_text_set_init(&b);
    size_t at = 99;
    CHECK(aqa_text_set_add_unique(&b, "x", &at) == AQA_OK && at == 0);
    CHECK(aqa_text_set_add_unique(&b, "y", &at) == AQA_OK && at == 1);
    CHECK(aqa_text_set_add_unique(&b, "x", &at) == AQA_OK && at == 0);
    CHECK(aqa_text_set_add(&b, "") == AQA_EINVAL);
    CHECK(aqa_text_set_add(&b, "two\nlines") == AQA_EINVAL);
    CHECK_EQ_INT(b.n, 2);
    aqa_text_set_free(&b);
}

/* The texts of every dive number of the real MTL-AQA annotations are covered through the golden
 * file; this case only checks that the source the golden file was generated from is present and a
 * pickle (FORMATS.md says protocol 2; the file is protocol 4, which Python reads the same way). */
static void test_shared_source_present(void) {
    const char *p = test_shared_path("MTL-AQA/final_annotations_dict_with_dive_number.pkl");
    FILE *f = fopen(p, "rb");
    if (!f) {
        SKIP("%.200s absent", p);
        return;
    }
    unsigned char hdr[2] = {0};
    CHECK(fread(hdr, 1, 2, f) == 2);
    fclose(f);
    CHECK(hdr[0] == 0x80 && hdr[1] >= 2 && hdr[1] <= 5); /* PROTO opcode, protocol 2..5 */
}

int main(void) {
    (void)test_seed; /* testlib helpers this program does not need */
    RUN(test_mtl_aqa_numbers);
    RUN(test_finediving_numbers);
    RUN(test_invalid_numbers);
    RUN(test_dive_texts);
    RUN(test_prompt_template);
    RUN(test_vocabulary);
    RUN(test_finediving_subactions);
    RUN(test_quality_grades);
    RUN(test_text_set_files);
    RUN(test_shared_source_present);
    return test_finish();
}
