/* Tests of core/words: segmentation, the public rule per mode, marked and address spans,
 * case helpers, and the shape-keeping random replacement. */
#include "tests/testutil.h"

#include <math.h>

#include "core/words.h"
#include "tests/tools/testrng.h"

static struct words_list *PL;

static int setup(void **st)
{
    (void)st;
    char err[256];
    return words_list_open(&PL, NULL, 0, err, sizeof err);
}

static int teardown(void **st)
{
    (void)st;
    words_list_close(PL);
    return 0;
}

struct split {
    struct words_unit u[512];
    size_t n;
    char clean[512];
    size_t clen;
};

static void split(struct split *s, int mode, const char *text)
{
    char err[256] = "";
    size_t len = strlen(text);
    assert_true(len < 500);
    int rc = words_split(PL, mode, text, len, s->u, 512, &s->n, s->clean, &s->clen, err,
                         sizeof err);
    if (rc) fail_msg("words_split: %s", err);
    s->clean[s->clen] = 0;
    /* units tile the clean text */
    size_t at = 0;
    for (size_t i = 0; i < s->n; i++) {
        assert_int_equal(s->u[i].off, at);
        assert_true(s->u[i].len > 0);
        at += s->u[i].len;
    }
    assert_int_equal(at, s->clen);
}

/* "text|cls-letter..." rendering: each unit as [piece] with class letter a/n/p/s. */
static const char *render(const struct split *s, int what)
{
    static char out[4096];
    size_t o = 0;
    for (size_t i = 0; i < s->n; i++) {
        char tag;
        if (what == 0) tag = "?anps"[s->u[i].cls];
        else tag = "?PSRC"[s->u[i].treat];
        o += (size_t)snprintf(out + o, sizeof out - o, "[%.*s]%c", (int)s->u[i].len,
                              s->clean + s->u[i].off, tag);
    }
    return out;
}

/* Treatment of the unit whose text (leading space stripped) is w; fails if none. */
static int treat_of(const struct split *s, const char *w)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *p = s->clean + s->u[i].off;
        size_t l = s->u[i].len;
        if (l && *p == ' ') p++, l--;
        if (l == strlen(w) && !memcmp(p, w, l)) return s->u[i].treat;
    }
    fail_msg("no unit '%s' in %s", w, render(s, 1));
    return -1;
}

static void test_list(void **st)
{
    (void)st;
    assert_true(words_list_size(PL) > 7000);
    assert_true(words_list_has(PL, "the", 3));
    assert_true(words_list_has(PL, "The", 3));
    assert_true(words_list_has(PL, "DOG", 3));
    assert_true(words_list_has(PL, "i", 1));
    assert_false(words_list_has(PL, "paris", 5));
    assert_false(words_list_has(PL, "john", 4));
    assert_false(words_list_has(PL, "march", 5));
    assert_false(words_list_has(PL, "caf\xc3\xa9", 5));
    assert_false(words_list_has(PL, "", 0));
    struct words_list *l;
    char err[64];
    const char txt[] = "# comment\nAlpha\n\n beta \r\nalpha\n";
    assert_int_equal(words_list_open(&l, txt, sizeof txt - 1, err, sizeof err), 0);
    assert_int_equal(words_list_size(l), 2);
    assert_true(words_list_has(l, "ALPHA", 5));
    assert_true(words_list_has(l, "beta", 4));
    assert_false(words_list_has(l, "# comment", 9));
    words_list_close(l);
}

static void test_segment_ascii(void **st)
{
    (void)st;
    struct split s;
    split(&s, WORDS_ALL, "Hello, world!  It's 42 o'clock...\n\tbye");
    assert_string_equal(render(&s, 0), "[Hello]a[,]p[ world]a[!]p[ ]s[ It's]a[ 42]n[ o'clock]a"
                                       "[...]p[\n\t]s[bye]a");
    split(&s, WORDS_ALL, "don't 'quoted' rock'n'roll a1b2 3rd");
    assert_string_equal(render(&s, 0), "[don't]a[ ]s[']p[quoted]a[']p[ rock'n'roll]a[ a1b2]n[ 3rd]n");
    split(&s, WORDS_ALL, "");
    assert_int_equal(s.n, 0);
    split(&s, WORDS_ALL, "   ");
    assert_string_equal(render(&s, 0), "[   ]s");
    split(&s, WORDS_ALL, "end'");
    assert_string_equal(render(&s, 0), "[end]a[']p");
}

static void test_segment_unicode(void **st)
{
    (void)st;
    struct split s;
    /* accents (precomposed and combining), right single quote, CJK, emoji */
    split(&s, WORDS_ALL, "Caf\xc3\xa9 Jose\xcc\x81 O\xe2\x80\x99Neil \xe4\xbd\xa0\xe5\xa5\xbd "
                         "\xf0\x9f\x98\x80\xf0\x9f\x98\x80!");
    assert_string_equal(render(&s, 0), "[Caf\xc3\xa9]a[ Jose\xcc\x81]a[ O\xe2\x80\x99Neil]a"
                                       "[ \xe4\xbd\xa0\xe5\xa5\xbd]a[ ]s"
                                       "[\xf0\x9f\x98\x80\xf0\x9f\x98\x80!]p");
    /* Arabic-Indic digits are digits; U+00A0 is a space */
    split(&s, WORDS_ALL, "x\xc2\xa0\xd9\xa3\xd9\xa4");
    assert_string_equal(render(&s, 0), "[x]a[\xc2\xa0]s[\xd9\xa3\xd9\xa4]n");
    /* invalid UTF-8: every bad byte its own punct unit, never a crash */
    split(&s, WORDS_ALL, "ab\xff\xc3z\x80 \xe4\xbd");
    assert_string_equal(render(&s, 0), "[ab]a[\xff]p[\xc3]p[z]a[\x80]p[ ]s[\xe4]p[\xbd]p");
    /* random bytes: units always tile the text */
    uint64_t rng = 7;
    for (int r = 0; r < 2000; r++) {
        char buf[64];
        size_t n = testrng_next(&rng) % 63;
        for (size_t i = 0; i < n; i++) {
            uint64_t v = testrng_next(&rng);
            buf[i] = (char)(v % 4 == 0 ? " a.{}@'"[v % 7] : (char)(v >> 8));
        }
        buf[n] = 0;
        struct words_unit u[64];
        size_t nu, cl;
        char clean[64], err[64];
        assert_int_equal(words_split(PL, r % 3, buf, n, u, n + 1, &nu, clean, &cl, err, sizeof err), 0);
        size_t at = 0;
        for (size_t i = 0; i < nu; i++) at += u[i].len;
        assert_int_equal(at, cl);
        assert_true(cl <= n);
    }
}

static void test_auto_sentences(void **st)
{
    (void)st;
    struct split s;
    split(&s, WORDS_AUTO, "Tell me a story about a dog and a ball.");
    assert_string_equal(render(&s, 1), "[Tell]P[ me]P[ a]P[ story]P[ about]P[ a]P[ dog]P[ and]P"
                                        "[ a]P[ ball]P[.]C");
    split(&s, WORDS_AUTO, "My name is John Smith and I live in Paris with Will.");
    assert_int_equal(treat_of(&s, "My"), WORDS_PUBLIC); /* sentence-initial */
    assert_int_equal(treat_of(&s, "name"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "John"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "Smith"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "I"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "Paris"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "Will"), WORDS_SANITIZE); /* capitalized inside a sentence */
    split(&s, WORDS_AUTO, "I will call. Will you? Paris is nice: Rome too\nBank it");
    assert_int_equal(treat_of(&s, "will"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "Will"), WORDS_PUBLIC); /* after '.' */
    assert_int_equal(treat_of(&s, "Paris"), WORDS_SANITIZE); /* not in the list */
    assert_int_equal(treat_of(&s, "Rome"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "Bank"), WORDS_PUBLIC); /* after a newline */
    split(&s, WORDS_AUTO, "He said \"Story time\" and (Good) NASA news, NEWS. STORY");
    assert_int_equal(treat_of(&s, "Story"), WORDS_SANITIZE); /* quote inside a sentence */
    assert_int_equal(treat_of(&s, "Good"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "NASA"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "NEWS"), WORDS_SANITIZE); /* all caps inside a sentence */
    assert_int_equal(treat_of(&s, "STORY"), WORDS_PUBLIC);  /* sentence start */
    split(&s, WORDS_AUTO, "\"Good,\" she said. (The end.) I'm sure you don't, we can't, "
                          "John's, O'Neil's, it'll, iPhone caf\xc3\xa9 zzyzx");
    assert_int_equal(treat_of(&s, "Good"), WORDS_PUBLIC); /* opening quote at the start */
    assert_int_equal(treat_of(&s, "The"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "I'm"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "don't"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "can't"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "it'll"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "John's"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "O'Neil's"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "iPhone"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "caf\xc3\xa9"), WORDS_SANITIZE); /* non-ASCII letters */
    assert_int_equal(treat_of(&s, "zzyzx"), WORDS_SANITIZE);
}

static void test_auto_numbers_dates(void **st)
{
    (void)st;
    struct split s;
    split(&s, WORDS_AUTO, "I was born on March 3, 1990 in Berlin; my card is 4111 1111-1111 "
                          "1111 and my phone +1 (555) 010-9999, flat 4B.");
    assert_int_equal(treat_of(&s, "March"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "3"), WORDS_RANDOM);
    assert_int_equal(treat_of(&s, "1990"), WORDS_RANDOM);
    assert_int_equal(treat_of(&s, "Berlin"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "4111"), WORDS_RANDOM);
    assert_int_equal(treat_of(&s, "555"), WORDS_RANDOM);
    assert_int_equal(treat_of(&s, "4B"), WORDS_RANDOM);
    assert_int_equal(treat_of(&s, "card"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "phone"), WORDS_PUBLIC);
    for (size_t i = 0; i < s.n; i++) {
        if (s.u[i].cls == WORDS_NUMBER) assert_int_equal(s.u[i].treat, WORDS_RANDOM);
        if (s.u[i].cls == WORDS_PUNCT || s.u[i].cls == WORDS_SPACE)
            assert_int_equal(s.u[i].treat, WORDS_CONTROL);
    }
}

static void test_addresses(void **st)
{
    (void)st;
    struct split s;
    const int modes[] = { WORDS_AUTO, WORDS_ALL, WORDS_MARKED };
    for (int m = 0; m < 3; m++) {
        split(&s, modes[m], "Write to john.smith@example.com or (see https://news.example.org/a?b=1). "
                            "Also www.the.com, then this end.");
        const char *forced[] = { "john", "smith", "example", "com", "https", "news", "org", "a",
                                 "b", "1", "www", "the" };
        for (size_t k = 0; k < sizeof forced / sizeof forced[0]; k++) {
            int hit = 0;
            for (size_t i = 0; i < s.n; i++) {
                const char *p = s.clean + s.u[i].off;
                size_t l = s.u[i].len;
                if (l && *p == ' ') p++, l--;
                if (l == strlen(forced[k]) && !memcmp(p, forced[k], l)) {
                    assert_int_equal(s.u[i].treat, WORDS_RANDOM);
                    assert_true(s.u[i].marked & WORDS_MARK_ADDRESS);
                    hit = 1;
                }
            }
            if (!hit) fail_msg("no unit '%s': %s", forced[k], render(&s, 1));
        }
        assert_int_equal(treat_of(&s, "@"), WORDS_CONTROL);
        assert_int_equal(treat_of(&s, "end"), modes[m] == WORDS_ALL ? WORDS_SANITIZE : WORDS_PUBLIC);
        assert_int_equal(treat_of(&s, "see"), modes[m] == WORDS_ALL ? WORDS_SANITIZE : WORDS_PUBLIC);
    }
    split(&s, WORDS_AUTO, "at @home, we@work and x@y.z and 3.5 or e.g. this");
    assert_int_equal(treat_of(&s, "home"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "work"), WORDS_PUBLIC); /* we@work: no domain dot */
    assert_int_equal(treat_of(&s, "y"), WORDS_RANDOM);
    assert_int_equal(treat_of(&s, "this"), WORDS_PUBLIC);
}

static void test_marked(void **st)
{
    (void)st;
    struct split s;
    split(&s, WORDS_AUTO, "my name is {{ Ann Lee }}. the {{dog}} {{ 42 }} and {{ the");
    assert_string_equal(s.clean, "my name is Ann Lee. the dog 42 and the");
    assert_int_equal(treat_of(&s, "my"), WORDS_PUBLIC);
    assert_int_equal(treat_of(&s, "Ann"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "Lee"), WORDS_SANITIZE);
    assert_int_equal(treat_of(&s, "dog"), WORDS_SANITIZE); /* public word, but marked */
    assert_int_equal(treat_of(&s, "42"), WORDS_RANDOM);
    assert_int_equal(treat_of(&s, "and"), WORDS_PUBLIC);
    assert_int_equal(s.u[s.n - 1].treat, WORDS_SANITIZE); /* unclosed: to the end */
    assert_true(s.u[s.n - 1].marked & WORDS_MARK_USER);
    split(&s, WORDS_MARKED, "Paris is {{ Paris }} 1990 {{ 1990 }} a }} b {{x{{y}}z");
    assert_string_equal(s.clean, "Paris is Paris 1990 1990 a }} b xyz");
    assert_string_equal(render(&s, 1), "[Paris]P[ is]P[ Paris]S[ 1990]P[ 1990]R[ a]P[ ]C[}}]C"
                                        "[ b]P[ xyz]S");
    split(&s, WORDS_ALL, "the {{ dog }} ran 7 times");
    assert_string_equal(render(&s, 1), "[the]S[ dog]S[ ran]S[ 7]R[ times]S");
    char err[64];
    size_t n, cl;
    struct words_unit u[16];
    char c[16];
    assert_int_equal(words_split(PL, 9, "a", 1, u, 8, &n, c, &cl, err, sizeof err), -1);
    assert_int_equal(words_split(NULL, WORDS_AUTO, "a", 1, u, 8, &n, c, &cl, err, sizeof err), -1);
    assert_int_equal(words_split(PL, WORDS_AUTO, "abc", 3, u, 3, &n, c, &cl, err, sizeof err), -1);
    /* in place */
    char t[] = "x {{ y }} z";
    assert_int_equal(words_split(PL, WORDS_ALL, t, strlen(t), u, 16, &n, t, &cl, err, sizeof err), 0);
    assert_int_equal(cl, 5);
    assert_memory_equal(t, "x y z", 5);
    assert_true(u[1].marked & WORDS_MARK_USER);
    assert_false(u[0].marked);
    assert_int_equal(words_mode_parse("marked"), WORDS_MARKED);
    assert_int_equal(words_mode_parse("none"), -1);
    assert_string_equal(words_treat_name(WORDS_RANDOM), "random");
    assert_string_equal(words_cls_name(WORDS_SPACE), "space");
}

static void test_case(void **st)
{
    (void)st;
    assert_int_equal(words_case_of(" paris", 6), WORDS_CASE_LOWER);
    assert_int_equal(words_case_of(" Paris", 6), WORDS_CASE_CAPITALIZED);
    assert_int_equal(words_case_of("I", 1), WORDS_CASE_CAPITALIZED);
    assert_int_equal(words_case_of("NASA", 4), WORDS_CASE_UPPER);
    assert_int_equal(words_case_of("iPhone", 6), WORDS_CASE_MIXED);
    assert_int_equal(words_case_of("McDonald", 8), WORDS_CASE_MIXED);
    assert_int_equal(words_case_of("42", 2), WORDS_CASE_NONE);
    assert_int_equal(words_case_of("O'neil", 6), WORDS_CASE_CAPITALIZED);
    char b[16];
    words_apply_case(b, " london", 7, WORDS_CASE_CAPITALIZED);
    assert_memory_equal(b, " London", 7);
    words_apply_case(b, "london", 6, WORDS_CASE_UPPER);
    assert_memory_equal(b, "LONDON", 6);
    words_apply_case(b, "LonDon", 6, WORDS_CASE_LOWER);
    assert_memory_equal(b, "london", 6);
    words_apply_case(b, "LonDon", 6, WORDS_CASE_MIXED);
    assert_memory_equal(b, "LonDon", 6);
    memcpy(b, "\xc3\xa9t\xc3\xa9", 5);
    words_apply_case(b, b, 5, WORDS_CASE_CAPITALIZED);
    assert_memory_equal(b, "\xc3\xa9T\xc3\xa9", 5);
}

static uint64_t rs = 12345;
static uint32_t seeded_uniform(const uint32_t upper)
{
    /* rejection sampling, like randombytes_uniform: no modulo bias */
    uint64_t lim = (UINT64_MAX / upper) * upper;
    uint64_t v;
    do v = testrng_next(&rs);
    while (v >= lim);
    return (uint32_t)(v % upper);
}

static void test_randomize_shape(void **st)
{
    (void)st;
    const char *in = " Ab-9z'Q \xc3\xa9\xd9\xa3\xcc\x81\xff!";
    size_t n = strlen(in);
    char out[64];
    for (int r = 0; r < 200; r++) {
        size_t o = words_randomize(in, n, out, seeded_uniform);
        assert_int_equal(o, n - 4); /* é → 1 byte, ٣ → 1 byte, combining mark dropped */
        assert_true(out[0] == ' ');
        assert_true(out[1] >= 'A' && out[1] <= 'Z');
        assert_true(out[2] >= 'a' && out[2] <= 'z');
        assert_true(out[3] == '-');
        assert_true(out[4] >= '0' && out[4] <= '9');
        assert_true(out[5] >= 'a' && out[5] <= 'z');
        assert_true(out[6] == '\'');
        assert_true(out[7] >= 'A' && out[7] <= 'Z');
        assert_true(out[8] == ' ');
        assert_true(out[9] >= 'a' && out[9] <= 'z');
        assert_true(out[10] >= '0' && out[10] <= '9');
        assert_true((uint8_t)out[11] == 0xff && out[12] == '!');
    }
    char b[] = "4111 1111";
    assert_int_equal(words_randomize(b, 9, b, seeded_uniform), 9);
    assert_true(b[4] == ' ');
}

/* Uniformity: chi-square of each position's symbol counts, and of the joint pair of two
 * digit positions (independence), against the uniform distribution. */
static void test_randomize_uniform(void **st)
{
    (void)st;
    enum { N = 200000 };
    static unsigned cnt_d[2][10], cnt_u[26], cnt_l[26], pair[100];
    const char *in = "7a Q8";
    char out[8];
    for (int r = 0; r < N; r++) {
        words_randomize(in, 5, out, seeded_uniform);
        cnt_d[0][out[0] - '0']++;
        cnt_l[out[1] - 'a']++;
        cnt_u[out[3] - 'A']++;
        cnt_d[1][out[4] - '0']++;
        pair[(out[0] - '0') * 10 + out[4] - '0']++;
    }
    /* 99.99% quantiles of chi-square: df 9 → 33.7, df 25 → 56.4, df 99 → 158.9 */
    for (int d = 0; d < 2; d++) {
        double x = 0, e = N / 10.0;
        for (int i = 0; i < 10; i++) x += (cnt_d[d][i] - e) * (cnt_d[d][i] - e) / e;
        assert_true(x < 33.7);
    }
    double xu = 0, xl = 0, e = N / 26.0;
    for (int i = 0; i < 26; i++) {
        xu += (cnt_u[i] - e) * (cnt_u[i] - e) / e;
        xl += (cnt_l[i] - e) * (cnt_l[i] - e) / e;
    }
    assert_true(xu < 56.4);
    assert_true(xl < 56.4);
    double xp = 0;
    e = N / 100.0;
    for (int i = 0; i < 100; i++) xp += (pair[i] - e) * (pair[i] - e) / e;
    assert_true(xp < 158.9);
    /* a biased generator fails the same test (the test has power) */
    unsigned c[10] = { 0 };
    for (int r = 0; r < N; r++) c[(testrng_next(&rs) % 11) % 10]++;
    double xb = 0;
    for (int i = 0; i < 10; i++) xb += (c[i] - N / 10.0) * (c[i] - N / 10.0) / (N / 10.0);
    assert_true(xb > 33.7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_list),
    cmocka_unit_test(test_segment_ascii),
    cmocka_unit_test(test_segment_unicode),
    cmocka_unit_test(test_auto_sentences),
    cmocka_unit_test(test_auto_numbers_dates),
    cmocka_unit_test(test_addresses),
    cmocka_unit_test(test_marked),
    cmocka_unit_test(test_case),
    cmocka_unit_test(test_randomize_shape),
    cmocka_unit_test(test_randomize_uniform),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
