/* ui/markdown: answers shown as Markdown. Inline markers, unclosed markers kept as written,
 * code blocks not interpreted, lists with a bullet and a hanging indent, headings, UTF-8
 * (restored-word marks included), streaming in pieces split anywhere (the same display as
 * the whole text), and the transcript keeping the model's text as written. */
#include "tests/testutil.h"

#include <locale.h>

#include "ui/markdown.h"
#include "ui/transcript.h"

static char shown[4096];

/* Renders src whole; the display text in `shown`. */
static void render(struct md *m, const char *src)
{
    md_init(m);
    assert_int_equal(md_update(m, src, strlen(src)), 0);
    assert_true(m->len < sizeof shown);
    memcpy(shown, m->text ? m->text : "", m->len);
    shown[m->len] = 0;
}

/* The attributes of the first byte of what in the display text. */
static int attr_at(const struct md *m, const char *what)
{
    const char *p = strstr(shown, what);
    assert_non_null(p);
    return m->attr[p - shown];
}

/* src renders as want, each listed text (NULL-ended) drawn with its attributes. */
struct at {
    const char *text;
    int attr;
};

static void check(const char *src, const char *want, const struct at *at)
{
    struct md m;
    render(&m, src);
    assert_string_equal(shown, want);
    for (; at && at->text; at++) assert_int_equal(attr_at(&m, at->text), at->attr);
    md_free(&m);
}

static void test_inline(void **state)
{
    (void)state;
    struct md m;
    check("a **bold** and *it* and `co**de**` x __b2__ _i2_",
          "a bold and it and co**de** x b2 i2",
          (const struct at[]){{"bold", MD_BOLD}, {"it ", MD_ITALIC}, {"co**de**", MD_CODE},
                              {"b2", MD_BOLD}, {"i2", MD_ITALIC}, {"a ", 0}, {NULL, 0}});
    render(&m, "**bold with *it* inside**");
    assert_string_equal(shown, "bold with it inside");
    assert_int_equal(attr_at(&m, "it "), MD_BOLD | MD_ITALIC);
    md_free(&m);
    /* Ambiguous markers are text: arithmetic, snake_case, a lone star. */
    const char *lit[] = { "2 * 3 * 4 = 24", "snake_case_name and naïve_wörd_x", "a * b", "x**", "** y **" };
    for (size_t i = 0; i < sizeof lit / sizeof *lit; i++) {
        render(&m, lit[i]);
        assert_string_equal(shown, lit[i]);
        md_free(&m);
    }
}

static void test_unclosed(void **state)
{
    (void)state;
    struct md m;
    const char *src[] = { "an **open marker never closes", "a `code span", "*half", "__x",
                          "```\n", "# ", "- " };
    const char *want[] = { "an **open marker never closes", "a `code span", "*half", "__x", "", "",
                           "\xe2\x80\xa2 " };
    for (size_t i = 0; i < sizeof src / sizeof *src; i++) {
        render(&m, src[i]);
        assert_string_equal(shown, want[i]);
        md_free(&m);
    }
    /* Markers close on their own line only. */
    check("**one\ntwo**",
          "**one\ntwo**",
          NULL);
}

static void test_code_block(void **state)
{
    (void)state;
    check("```python\nx = **a** # _b_\n- not a list\n```\nafter **b**\n",
          "python\nx = **a** # _b_\n- not a list\nafter b\n",
          (const struct at[]){{"python", MD_FENCE}, {"x = **a**", MD_BLOCK}, {"- not", MD_BLOCK},
                              {"b\n", MD_BOLD}, {NULL, 0}});
    /* No label: the fence line is hidden. A block that never closes stays a block. */
    check("~~~\ncode *x*\n~~~ \ntext\n```\nstill **code**",
          "code *x*\ntext\nstill **code**",
          (const struct at[]){{"code *x*", MD_BLOCK}, {"text", 0}, {"still", MD_BLOCK}, {NULL, 0}});
    /* A shorter or different fence does not close it. */
    check("````\n```\n~~~~\n````\nout",
          "```\n~~~~\nout",
          NULL);
}

static void test_lists_headings(void **state)
{
    (void)state;
    struct md m;
    check("- one\n* two **b**\n  + nested\n1. first\n12) twelfth\n**not** a list\n-no\n",
          "\xe2\x80\xa2 one\n\xe2\x80\xa2 two b\n  \xe2\x80\xa2 nested\n1. first\n"
                               "12) twelfth\nnot a list\n-no\n",
          (const struct at[]){{"\xe2\x80\xa2 one", MD_BULLET}, {"one", 0}, {"1. ", MD_BULLET},
                              {"first", 0}, {"b\n", MD_BOLD}, {NULL, 0}});
    render(&m, "# Title *x*\n### Sub\n#nospace\n");
    assert_string_equal(shown, "Title x\nSub\n#nospace\n");
    assert_int_equal(attr_at(&m, "Title"), MD_HEAD | MD_BOLD);
    assert_int_equal(attr_at(&m, "x\n"), MD_HEAD | MD_BOLD | MD_ITALIC);
    assert_int_equal(attr_at(&m, "#nospace"), 0);
    md_free(&m);
}

static void test_utf8(void **state)
{
    (void)state;
    /* A restored word keeps its marks, inside emphasis or not. */
    check("**héllo ⟨wörld⟩** _日本_ ⟨Zoë⟩ `ü`",
          "héllo ⟨wörld⟩ 日本 ⟨Zoë⟩ ü",
          (const struct at[]){{"⟨wörld⟩", MD_BOLD}, {"日本", MD_ITALIC}, {"⟨Zoë⟩", 0}, {"ü", MD_CODE},
                              {NULL, 0}});
}

/* Streamed in pieces cut at every byte (and one byte at a time): the same display as the
 * whole text, never a character lost on the way. */
static void test_streaming(void **state)
{
    (void)state;
    const char *src = "Here **is** a `list`:\n- é **bold ⟨wörld⟩**\n```c\nint *p = **q;\n```\n"
                      "# Done _x_ **open";
    size_t n = strlen(src);
    struct md whole;
    render(&whole, src);
    char want[4096];
    memcpy(want, shown, whole.len + 1);
    for (size_t cut = 0; cut <= n; cut++) {
        struct md m;
        md_init(&m);
        assert_int_equal(md_update(&m, src, cut), 0);
        assert_int_equal(md_update(&m, src, n), 0);
        assert_int_equal(m.len, whole.len);
        assert_memory_equal(m.text, whole.text, m.len);
        assert_memory_equal(m.attr, whole.attr, m.len);
        md_free(&m);
    }
    struct md m;
    md_init(&m);
    for (size_t i = 1; i <= n; i++) {
        assert_int_equal(md_update(&m, src, i), 0);
        /* What is shown so far holds every letter received (markers aside). */
        size_t letters = 0;
        for (size_t k = 0; k < i; k++) letters += src[k] != '*' && src[k] != '`' && src[k] != '_' &&
                                                  src[k] != '#' && src[k] != '\n';
        size_t shown_letters = 0;
        for (size_t k = 0; k < m.len; k++) shown_letters += m.text[k] != '*' && m.text[k] != '`' &&
                                                            m.text[k] != '_' && m.text[k] != '\n';
        assert_true(shown_letters + 1 >= letters);   /* "- " becomes "• " (one more byte) */
    }
    assert_int_equal(m.len, whole.len);
    assert_memory_equal(m.text, whole.text, m.len);
    assert_memory_equal(m.attr, whole.attr, m.len);
    assert_non_null(strstr(want, "Done x **open"));
    md_free(&m);
    md_free(&whole);
}

/* The transcript: the text stays as the model wrote it; markers split across pieces (and a
 * character split across pieces) are drawn once whole; list rows hang; --plain shows it raw. */
static void test_transcript(void **state)
{
    (void)state;
    /* Rows are measured by display width (wcwidth). */
    if (!setlocale(LC_ALL, "C.UTF-8") && !setlocale(LC_ALL, "en_US.UTF-8")) skip();
    struct transcript t;
    transcript_init(&t, 0);
    assert_int_equal(transcript_set_markdown(&t, 1), 0);
    const char *pieces[] = { "- item *", "*bo", "ld h\xc3", "\xa9llo*", "* and more words to wrap" };
    for (size_t i = 0; i < 5; i++) assert_int_equal(transcript_append(&t, pieces[i], strlen(pieces[i])), 0);
    transcript_end_answer(&t);
    const char *raw = "- item **bold héllo** and more words to wrap";
    assert_int_equal(t.e[0].len, strlen(raw));
    assert_memory_equal(t.e[0].text, raw, strlen(raw));
    const char *text;
    size_t len;
    const unsigned char *attr;
    transcript_shown(&t.e[0], &text, &len, &attr);
    const char *disp = "\xe2\x80\xa2 item bold héllo and more words to wrap";
    assert_int_equal(len, strlen(disp));
    assert_memory_equal(text, disp, len);
    assert_non_null(attr);
    assert_int_equal(attr[strlen("\xe2\x80\xa2 item ")], MD_BOLD);
    struct tr_row *rows;
    size_t n;
    assert_int_equal(transcript_layout(&t, 16, &rows, &n), 0);   /* 14 columns of text */
    assert_true(n >= 3);
    assert_int_equal(rows[0].off, 0);
    assert_int_equal(rows[0].indent, 0);
    assert_memory_equal(text + rows[0].off, "\xe2\x80\xa2 item bold ", rows[0].len);
    for (size_t i = 1; i < n; i++) {
        assert_int_equal(rows[i].indent, 2);
        assert_true(utf8_width(text + rows[i].off, rows[i].len) <= 12);
    }
    free(rows);
    /* Off: the text as written. */
    assert_int_equal(transcript_set_markdown(&t, 0), 0);
    transcript_shown(&t.e[0], &text, &len, &attr);
    assert_null(attr);
    assert_int_equal(len, strlen(raw));
    assert_memory_equal(text, raw, len);
    /* Your own messages are never rendered. */
    assert_int_equal(transcript_set_markdown(&t, 1), 0);
    assert_int_equal(transcript_add(&t, TR_USER, "**mine**", 8), 0);
    transcript_shown(&t.e[1], &text, &len, &attr);
    assert_null(attr);
    transcript_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_inline),
    cmocka_unit_test(test_unclosed),
    cmocka_unit_test(test_code_block),
    cmocka_unit_test(test_lists_headings),
    cmocka_unit_test(test_utf8),
    cmocka_unit_test(test_streaming),
    cmocka_unit_test(test_transcript),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
