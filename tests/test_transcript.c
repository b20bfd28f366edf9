/* ui/transcript wrapping by display width, streaming of split UTF-8, scrollback bounds;
 * ui/utf8 sanitizing; ui/queue wake-ups; ui/panel rows; and the whole screen rendered on
 * a virtual terminal (newterm on a non-tty) and dumped. */
#include "tests/testutil.h"

#include <locale.h>
#include <poll.h>
#include <pthread.h>

#include "ui/panel.h"
#include "ui/queue.h"
#include "ui/screen.h"
#include "ui/status.h"
#include "ui/transcript.h"
#include "ui/utf8.h"

static int setup(void **state)
{
    (void)state;
    if (!setlocale(LC_ALL, "C.UTF-8") && !setlocale(LC_ALL, "en_US.UTF-8")) {
        print_message("no UTF-8 locale\n");
        return -1;
    }
    return 0;
}

struct rows {
    char r[64][128];
    int n;
    const char *s;
};

static void collect(void *ctx, size_t off, size_t len)
{
    struct rows *r = ctx;
    if (r->n < 64) snprintf(r->r[r->n++], 128, "%.*s", (int)len, r->s + off);
}

static void test_wrap(void **state)
{
    (void)state;
    struct rows r = { .s = "the quick brown fox jumps" };
    assert_int_equal(transcript_wrap(r.s, strlen(r.s), 10, collect, &r), 3);
    assert_string_equal(r.r[0], "the quick ");
    assert_string_equal(r.r[1], "brown fox ");
    assert_string_equal(r.r[2], "jumps");
    /* A run longer than the width breaks anywhere. */
    r = (struct rows){ .s = "abcdefghij" };
    assert_int_equal(transcript_wrap(r.s, 10, 4, collect, &r), 3);
    assert_string_equal(r.r[2], "ij");
    /* Wide characters count two columns: 5 CJK chars in width 4 → 3 rows. */
    r = (struct rows){ .s = "日本語日本" };
    assert_int_equal(transcript_wrap(r.s, strlen(r.s), 4, collect, &r), 3);
    assert_string_equal(r.r[0], "日本");
    /* Newlines split rows; empty text is one empty row. */
    r = (struct rows){ .s = "a\nb" };
    assert_int_equal(transcript_wrap(r.s, 3, 80, collect, &r), 2);
    assert_int_equal(transcript_wrap("", 0, 80, NULL, NULL), 1);
    /* Width 1 with a wide char never loops forever. */
    assert_int_equal(transcript_wrap("日日", 6, 1, NULL, NULL), 2);
    /* Control characters take 2 columns (^X). */
    r = (struct rows){ .s = "\x01\x02\x03" };
    assert_int_equal(transcript_wrap(r.s, 3, 4, collect, &r), 2);
}

static void test_utf8(void **state)
{
    (void)state;
    char out[8];
    int w;
    assert_int_equal(utf8_cell("\xff" "a", 2, out, &w), 1);
    assert_string_equal(out, "\xef\xbf\xbd");
    assert_int_equal(utf8_cell("\xc0\xaf", 2, out, &w), 1);   /* overlong */
    assert_string_equal(out, "\xef\xbf\xbd");
    assert_int_equal(utf8_cell("\x1b[2J", 4, out, &w), 1);
    assert_string_equal(out, "^[");
    assert_int_equal(w, 2);
    assert_int_equal(utf8_cell("\xc2\x9b", 2, out, &w), 2);    /* C1 CSI */
    assert_string_equal(out, "\xef\xbf\xbd");
    assert_int_equal(utf8_cell("é", 2, out, &w), 2);
    assert_int_equal(w, 1);
    assert_int_equal(utf8_incomplete_tail("ab\xe2\x82", 4), 2);
    assert_int_equal(utf8_incomplete_tail("ab\xe2\x82\xac", 5), 0);
    assert_int_equal(utf8_incomplete_tail("ab\x80", 3), 0);
    char fit[64];
    assert_int_equal(utf8_fit("hello world", 11, 6, fit, sizeof fit), 6);
    assert_string_equal(fit, "hello…");
    assert_int_equal(utf8_fit("a\nb", 3, 10, fit, sizeof fit), 3);
    assert_string_equal(fit, "a⏎b");
}

static void test_stream_split_utf8(void **state)
{
    (void)state;
    struct transcript t;
    transcript_init(&t, 3);
    assert_int_equal(transcript_add(&t, TR_USER, "hi", 2), 0);
    /* "€" split over three pieces arrives whole. */
    assert_int_equal(transcript_append(&t, "x\xe2", 2), 0);
    assert_int_equal(t.e[1].len, 1);
    assert_int_equal(transcript_append(&t, "\x82", 1), 0);
    assert_int_equal(transcript_append(&t, "\xac!", 2), 0);
    assert_string_equal(t.e[1].text, "x€!");
    /* An invalid continuation does not hold text back forever. */
    assert_int_equal(transcript_append(&t, "\xe2" "a", 2), 0);
    transcript_end_answer(&t);
    assert_int_equal(t.e[1].len, strlen("x€!") + 2);
    /* An answer's leading space (a continuation's first word) is not drawn; later ones are. */
    assert_int_equal(transcript_add(&t, TR_USER, "go", 2), 0);
    assert_int_equal(transcript_append(&t, " ", 1), 0);
    assert_int_equal(transcript_append(&t, " is", 3), 0);
    assert_int_equal(transcript_append(&t, " it", 3), 0);
    assert_string_equal(t.e[t.n - 1].text, "is it");
    /* The scrollback is bounded: the oldest entries go. */
    for (int i = 0; i < 5; i++) assert_int_equal(transcript_add(&t, TR_INFO, "n", 1), 0);
    assert_int_equal(t.n, 3);
    /* Scrolling clamps to the content. */
    transcript_scroll(&t, 1000, 20, 2);
    assert_int_equal(t.scroll, 3 + 0 - 2 + 0);   /* 3 one-row entries, pane of 2 */
    transcript_scroll(&t, -1000, 20, 2);
    assert_int_equal(t.scroll, 0);
    transcript_free(&t);
}

struct qarg {
    struct queue *q;
};

static void *producer(void *p)
{
    struct qarg *a = p;
    for (int i = 0; i < 1000; i++) queue_push(a->q, QUEUE_TEXT, 0, 0, "ab", 2);
    queue_push(a->q, QUEUE_DONE, 7, 1.5, NULL, 0);
    return NULL;
}

static void test_queue(void **state)
{
    (void)state;
    struct queue *q;
    char err[128];
    assert_int_equal(queue_open(&q, err, sizeof err), 0);
    struct pollfd pf = { queue_fd(q), POLLIN, 0 };
    assert_int_equal(poll(&pf, 1, 0), 0);          /* nothing yet: not readable */
    struct qarg a = { q };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, producer, &a), 0);
    int texts = 0, done = 0;
    while (!done) {
        assert_int_equal(poll(&pf, 1, 5000), 1);   /* the pipe wakes the loop */
        struct queue_item *it;
        while ((it = queue_pop(q))) {
            if (it->type == QUEUE_TEXT) {
                assert_int_equal(it->len, 2);
                assert_string_equal(it->text, "ab");
                texts++;
            } else {
                assert_int_equal(it->type, QUEUE_DONE);
                assert_int_equal(it->status, 7);
                assert_null(it->text);
                done = 1;
            }
            queue_item_free(it);
        }
    }
    pthread_join(th, NULL);
    assert_int_equal(texts, 1000);                  /* in order, none lost */
    queue_close(q);
}

static void test_panel_rows(void **state)
{
    (void)state;
    struct panel_tok r = { .orig = " secret", .sent = " other", .kind = PANEL_REPLACED,
                           .eps = 0.5 };
    char buf[256];
    panel_row(&r, 30, buf, sizeof buf);
    assert_non_null(strstr(buf, "secret"));
    assert_non_null(strstr(buf, "→"));
    assert_non_null(strstr(buf, " R  0.50"));
    assert_true(utf8_width(buf, strlen(buf)) <= 30);
    /* The header's columns sit over the row's: "sent" over the sent piece, ε over the ε. */
    char head[256];
    panel_header(30, head, sizeof head);
    assert_int_equal(utf8_width(head, strlen(head)), utf8_width(buf, strlen(buf)));
    const char *arrow = strstr(buf, "→"), *sent = strstr(head, "sent");
    assert_non_null(sent);
    assert_int_equal(utf8_width(head, (size_t)(sent - head)),
                     utf8_width(buf, (size_t)(arrow - buf)) + 2);   /* "→ " then the piece */
    assert_true(strcmp(head + strlen(head) - strlen("ε"), "ε") == 0);
    /* Whitespace is drawn visibly: a token of spaces is no blank row, and a leading space
     * that only one side has shows why "T" became "T". */
    struct panel_tok ws = { .orig = " ", .sent = " ", .kind = PANEL_PUBLIC, .eps = 0 };
    panel_row(&ws, 30, buf, sizeof buf);
    assert_true(strncmp(buf, "␣", strlen("␣")) == 0);
    assert_non_null(strstr(buf, "→ ␣"));
    snprintf(ws.orig, sizeof ws.orig, "\\n");
    snprintf(ws.sent, sizeof ws.sent, "\t");
    panel_row(&ws, 30, buf, sizeof buf);
    assert_true(strncmp(buf, "↵", strlen("↵")) == 0);
    assert_non_null(strstr(buf, "→ ⇥"));
    struct panel_tok lead = { .orig = " T", .sent = "T", .kind = PANEL_REPLACED, .eps = 1 };
    panel_row(&lead, 30, buf, sizeof buf);
    assert_true(strncmp(buf, "␣T ", strlen("␣T ")) == 0);
    assert_non_null(strstr(buf, "→ T "));
    struct panel_tok same = { .orig = " Lily", .sent = " Mary", .kind = PANEL_REPLACED, .eps = 1 };
    panel_row(&same, 30, buf, sizeof buf);
    assert_null(strstr(buf, "␣"));   /* the usual word space on both sides stays plain */
    snprintf(r.orig, sizeof r.orig, "\x1b[31mred");
    panel_row(&r, 30, buf, sizeof buf);
    assert_null(strchr(buf, '\x1b'));
    panel_bar(25, 100, 20, buf, sizeof buf);
    assert_string_equal(buf, "[######--]  75% left");   /* exactly 20 columns */
    panel_bar(200, 100, 20, buf, sizeof buf);
    assert_non_null(strstr(buf, "0% left"));
    struct status_info si = { .model = "m\x1b[2J", .device = "cpu", .tps = 12.5, .core = "locked",
                              .eps = 1, .spent = 3, .total = 64 };
    status_format(&si, 200, buf, sizeof buf);
    assert_null(strchr(buf, '\x1b'));
    assert_non_null(strstr(buf, "12.5 tok/s"));
    assert_non_null(strstr(buf, "ε 1/tok · session 3/64"));
    status_format(&si, 30, buf, sizeof buf);
    assert_int_equal(utf8_width(buf, strlen(buf)), 30);
    /* Narrow terminals lose the device and the core's status before the budget. */
    si.core = "memfd_secret, 136 KiB locked, swap 0 pages out/0 in";
    si.device = "cpu (avx512, 2 threads)";
    status_format(&si, 48, buf, sizeof buf);
    assert_non_null(strstr(buf, "12.5 tok/s"));
    assert_non_null(strstr(buf, "session 3/64"));
    status_format(&si, 100, buf, sizeof buf);
    assert_non_null(strstr(buf, "ε 1/tok · session 3/64"));
    assert_non_null(strstr(buf, "memfd_secret"));   /* cut, not dropped */
    assert_int_equal(utf8_width(buf, strlen(buf)), 100);
    /* With the ledger: the word unit and today's figures; without sanitization the line
     * says so and keeps saying it on a narrow terminal. */
    si.unit = "word";
    si.day = 1;
    si.spent = 12;
    si.total = 200;
    status_format(&si, 100, buf, sizeof buf);
    assert_non_null(strstr(buf, "ε 1/word · today 12/200"));
    si.unsanitized = 1;
    status_format(&si, 100, buf, sizeof buf);
    assert_non_null(strstr(buf, "NOT SANITIZED"));
    assert_null(strstr(buf, "ε 1/word"));
    status_format(&si, 40, buf, sizeof buf);
    assert_non_null(strstr(buf, "NOT SANITIZED"));
    /* Narrower still, or long figures: the speed and the words go, the budget stays whole. */
    struct status_info tight = { .model = "m", .device = "cpu (avx512, 2 threads)", .busy = 1,
                                 .core = "locked", .eps = 0.0625, .spent = 0.25, .total = 1e9 };
    for (int wd = 40; wd >= 18; wd -= 11) {
        status_format(&tight, wd, buf, sizeof buf);
        assert_non_null(strstr(buf, "0.25/1000000000"));
        assert_null(strstr(buf, "…"));
        assert_int_equal(utf8_width(buf, strlen(buf)), wd);
    }
}

/* A virtual screen of cols x rows on /dev/null (skips the test when there is none). */
static FILE *vs_out, *vs_in;

static struct screen *vscreen_open(int cols, int rows)
{
    vs_out = fopen("/dev/null", "w");
    vs_in = fopen("/dev/null", "r");
    assert_non_null(vs_out);
    assert_non_null(vs_in);
    struct screen *s;
    char err[256];
    struct screen_options o = { .in = vs_in, .out = vs_out, .cols = cols, .rows = rows, .term = "xterm" };
    if (screen_open(&s, &o, err, sizeof err) != 0) {
        print_message("SKIP: %s\n", err);
        fclose(vs_out);
        fclose(vs_in);
        skip();
    }
    return s;
}

static void vscreen_close(struct screen *s)
{
    screen_close(s);
    fclose(vs_out);
    fclose(vs_in);
}

/* What the screen shows, one line per row (malloc'd, NUL-terminated). */
static char *vscreen_dump(struct screen *s, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    assert_non_null(f);
    assert_int_equal(screen_dump(s, f), 0);
    fclose(f);
    return buf;
}

/* Every string of the NULL-ended list is (expect_all) or none is (expect_none) in buf. */
static void expect_all(const char *buf, const char *const *want)
{
    for (; *want; want++)
        if (!strstr(buf, *want)) fail_msg("'%s' is not on the screen:\n%s", *want, buf);
}

static void expect_none(const char *buf, const char *const *unwanted)
{
    for (; *unwanted; unwanted++)
        if (strstr(buf, *unwanted)) fail_msg("'%s' is on the screen:\n%s", *unwanted, buf);
}

/* The screen drawn, as text. */
static char *draw_dump(struct screen *s)
{
    size_t len;
    screen_draw(s, NULL);
    return vscreen_dump(s, &len);
}

static void test_virtual_screen(void **state)
{
    (void)state;
    struct screen *s = vscreen_open(70, 12);
    struct transcript *t = screen_transcript(s);
    transcript_add(t, TR_USER, "héllo \x1b[2J\x07 wörld \xff", 22);
    transcript_append(t, "日本語の答え", strlen("日本語の答え"));
    struct panel_tok rep[2] = { { " héllo", " other", PANEL_REPLACED, 1.0 },
                                { " \x1b", " \x1b", PANEL_CONTROL, 0 } };
    struct panel_data pd = { .rep = rep, .n = 2, .msg_eps = 1.0, .eps = 1.0, .spent = 1.0,
                             .total = 64.0, .mechanism = "rnm" };
    screen_set_panel(s, &pd);
    struct status_info si = { .model = "tiny", .device = "cpu", .tps = 99.0,
                              .core = "memfd_secret", .eps = 1.0, .spent = 1.0, .total = 64.0 };
    screen_set_status(s, &si);
    char *buf = draw_dump(s);
    size_t len = strlen(buf);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    assert_int_equal(lines, 12);
    expect_none(buf, (const char *const[]){"\x1b", "\x07", NULL});
    expect_all(buf, (const char *const[]){"> héllo ^[[2J^G wörld �", "日本語の答え", "99.0 tok/s",
                                          "message: 2 tok", NULL});
    free(buf);
    /* Toggle the panel off: the transcript gets the whole width. */
    screen_toggle_panel(s);
    screen_draw(s, NULL);
    assert_false(screen_panel_visible(s));
    vscreen_close(s);
}

static char *dump_answer(int markdown, const char *answer)
{
    struct screen *s = vscreen_open(50, 10);
    struct transcript *t = screen_transcript(s);
    transcript_set_markdown(t, markdown);
    transcript_append(t, answer, strlen(answer));
    transcript_end_answer(t);
    char *buf = draw_dump(s);
    vscreen_close(s);
    return buf;
}

/* An answer in Markdown on the screen: a bullet, bold without its markers, a code block
 * with a margin and its text untouched; off, the text as written. */
static void test_markdown_screen(void **state)
{
    (void)state;
    const char *answer = "Steps:\n- first **bold**\n```sh\nls **\n```\n";
    char *md = dump_answer(1, answer);
    expect_all(md, (const char *const[]){"  \xe2\x80\xa2 first bold", "sh\n", "    ls **", NULL});
    expect_none(md, (const char *const[]){"```", "**bold**", NULL});
    free(md);
    char *raw = dump_answer(0, answer);
    assert_non_null(strstr(raw, "- first **bold**"));
    assert_non_null(strstr(raw, "```sh"));
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_wrap),
    cmocka_unit_test(test_utf8),
    cmocka_unit_test(test_stream_split_utf8),
    cmocka_unit_test(test_queue),
    cmocka_unit_test(test_panel_rows),
    cmocka_unit_test(test_virtual_screen),
    cmocka_unit_test(test_markdown_screen),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
