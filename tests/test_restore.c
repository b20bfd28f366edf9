/* app/restore: substitutes the model repeats come back as the user's words, on whole words
 * only, also when the answer streams in pieces that split a word. */
#include "tests/testutil.h"

#include "app/restore.h"

struct sink {
    char buf[1024];
    size_t len;
};

/* Marks restored words [orig] like the plain transcript would. */
static void emit(void *ctx, const char *s, size_t n, const char *orig)
{
    struct sink *k = ctx;
    if (orig) k->len += (size_t)snprintf(k->buf + k->len, sizeof k->buf - k->len, "[%s]", orig);
    else k->len += (size_t)snprintf(k->buf + k->len, sizeof k->buf - k->len, "%.*s", (int)n, s);
}

static void test_learn_and_text(void **state)
{
    (void)state;
    struct restore *r = restore_open();
    assert_non_null(r);
    assert_int_equal(restore_learn(r, " Alice", " Maria"), 0);
    assert_int_equal(restore_learn(r, " 4111", " 8302"), 0);
    assert_int_equal(restore_learn(r, " same", " same"), 0);     /* kept: nothing to do */
    assert_int_equal(restore_learn(r, " a b", " c, d"), 0);      /* not one word */
    assert_string_equal(restore_lookup(r, "Maria", 5), "Alice");
    assert_null(restore_lookup(r, "Mari", 4));
    assert_null(restore_lookup(r, "same", 4));
    assert_null(restore_lookup(r, "c, d", 4));
    int changed = 0;
    char *t = restore_text(r, "Maria said 8302, not Marianne.", 30, "<", ">", &changed);
    assert_string_equal(t, "<Alice> said <4111>, not Marianne.");
    assert_true(changed);
    free(t);
    t = restore_text(r, "nothing here", 12, "<", ">", &changed);
    assert_string_equal(t, "nothing here");
    assert_false(changed);
    free(t);
    restore_forget(r);
    assert_null(restore_lookup(r, "Maria", 5));
    restore_close(r);
}

static void test_streaming_split_words(void **state)
{
    (void)state;
    struct restore *r = restore_open();
    assert_int_equal(restore_learn(r, " Alice", " Maria"), 0);
    struct sink k = { .len = 0 };
    const char *pieces[] = { " Ma", "ri", "a", " met", " Mar", "ianne", " and Maria" };
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
        restore_feed(r, pieces[i], strlen(pieces[i]), emit, &k);
        /* Nothing of a word that may still grow is shown before it ends. */
        assert_null(strstr(k.buf, "Ma]"));
    }
    assert_string_equal(k.buf, " [Alice] met Marianne and ");
    restore_flush(r, emit, &k);
    assert_string_equal(k.buf, " [Alice] met Marianne and [Alice]");
    restore_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learn_and_text),
        cmocka_unit_test(test_streaming_split_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
