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

static void test_inline(void **state)
{
    (void)state;
    struct md m;
    render(&m, "a **bold** and *it* and `co**de**` x __b2__ _i2_");
    assert_string_equal(shown, "a bold and it and co**de** x b2 i2");
    assert_int_equal(attr_at(&m, "bold"), MD_BOLD);
    assert_int_equal(attr_at(&m, "it "), MD_ITALIC);
    assert_int_equal(attr_at(&m, "co**de**"), MD_CODE);
    assert_int_equal(attr_at(&m, "b2"), MD_BOLD);
    assert_int_equal(attr_at(&m, "i2"), MD_ITALIC);
    assert_int_equal(attr_at(&m, "a "), 0);
    md_free(&m);
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
    render(&m, "**one\ntwo**");
    assert_string_equal(shown, "**one\ntwo**");
    md_free(&m);
}

static void test_code_block(void **state)
{
    (void)state;
    struct md m;
    render(&m, "```python\nx = **a** # _b_\n- not a list\n```\nafter **b**\n");
    assert_string_equal(shown, "python\nx = **a** # _b_\n- not a list\nafter b\n");
    assert_int_equal(attr_at(&m, "python"), MD_FENCE);
    assert_int_equal(attr_at(&m, "x = **a**"), MD_BLOCK);
    assert_int_equal(attr_at(&m, "- not"), MD_BLOCK);
    assert_int_equal(attr_at(&m, "b\n"), MD_BOLD);
    md_free(&m);
    /* No label: the fence line is hidden. A block that never closes stays a block. */
    render(&m, "~~~\ncode *x*\n~~~ \ntext\n```\nstill **code**");
    assert_string_equal(shown, "code *x*\ntext\nstill **code**");
    assert_int_equal(attr_at(&m, "code *x*"), MD_BLOCK);
    assert_int_equal(attr_at(&m, "text"), 0);
    assert_int_equal(attr_at(&m, "still"), MD_BLOCK);
    md_free(&m);
    /* A shorter or different fence does not close it. */
    render(&m, "````\n```\n~~~~\n````\nout");
    assert_string_equal(shown, "```\n~~~~\nout");
    md_free(&m);
}

static void test_lists_headings(void **state)
{
    (void)state;
    struct md m;
    render(&m, "- one\n* two **b**\n  + nested\n1. first\n12) twelfth\n**not** a list\n-no\n");
    assert_string_equal(shown, "\xe2\x80\xa2 one\n\xe2\x80\xa2 two b\n  \xe2\x80\xa2 nested\n1. first\n"
                               "12) twelfth\nnot a list\n-no\n");
    assert_int_equal(attr_at(&m, "\xe2\x80\xa2 one"), MD_BULLET);
    assert_int_equal(attr_at(&m, "one"), 0);
    assert_int_equal(attr_at(&m, "1. "), MD_BULLET);
    assert_int_equal(attr_at(&m, "first"), 0);
    assert_int_equal(attr_at(&m, "b\n"), MD_BOLD);
    md_free(&m);
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
    struct md m;
    /* A restored word keeps its marks, inside emphasis or not. */
    render(&m, "**héllo ⟨wörld⟩** _日本_ ⟨Zoë⟩ `ü`");
    assert_string_equal(shown, "héllo ⟨wörld⟩ 日本 ⟨Zoë⟩ ü");
    assert_int_equal(attr_at(&m, "⟨wörld⟩"), MD_BOLD);
    assert_int_equal(attr_at(&m, "日本"), MD_ITALIC);
    assert_int_equal(attr_at(&m, "⟨Zoë⟩"), 0);
    assert_int_equal(attr_at(&m, "ü"), MD_CODE);
    md_free(&m);
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
