/* The /commands table (lookup, dispatch, help, busy refusal), scripts (comments, blank
 * lines, backslash continuation, CRLF, NUL) and /save-history round trips, JSON strings. */
#include "tests/testutil.h"

#include "app/commands.h"
#include "app/script.h"

struct out {
    char last[4096];
    int level, toggles;
};

static void print_cb(void *ctx, int level, const char *msg)
{
    struct out *o = ctx;
    o->level = level;
    snprintf(o->last, sizeof o->last, "%s", msg);
}

static void toggle_cb(void *ctx) { ((struct out *)ctx)->toggles++; }

static void test_table(void **state)
{
    (void)state;
    const char *need[] = { "help", "eps", "budget", "mechanism", "panel", "show", "save",
                           "clear", "system", "save-history", "quit" };
    for (size_t i = 0; i < sizeof need / sizeof *need; i++) {
        const struct cmds_entry *e = cmds_find(need[i], strlen(need[i]));
        assert_non_null(e);
        assert_string_equal(e->name, need[i]);
        assert_true(strlen(e->help) > 5);
        assert_non_null(e->exec);
    }
    assert_ptr_equal(cmds_find("sav", 3), NULL);        /* ambiguous: save, save-history */
    assert_string_equal(cmds_find("mech", 4)->name, "mechanism");
    assert_string_equal(cmds_find("save", 4)->name, "save");   /* exact beats prefix */
    assert_null(cmds_find("nope", 4));
    assert_true(cmds_is_command("/help"));
    assert_false(cmds_is_command("//not a command"));
    assert_false(cmds_is_command("/ spaced"));
    assert_false(cmds_is_command("hello"));
    assert_false(cmds_is_command("/"));
}

static void test_dispatch(void **state)
{
    (void)state;
    struct out o = { 0 };
    struct cmds_session s = { .print = print_cb, .toggle_panel = toggle_cb, .ctx = &o };
    assert_int_equal(cmds_run(&s, "/help", 0), CMDS_OK);
    for (int i = 0; cmds_table[i].name; i++) {
        char want[64];
        snprintf(want, sizeof want, "/%s", cmds_table[i].name);
        assert_non_null(strstr(o.last, want));
    }
    assert_int_equal(cmds_run(&s, "/bogus 1", 0), CMDS_FAIL);
    assert_int_equal(o.level, CMDS_ERROR);
    assert_non_null(strstr(o.last, "unknown command /bogus"));
    assert_int_equal(cmds_run(&s, "/panel", 1), CMDS_OK);   /* allowed while busy */
    assert_int_equal(o.toggles, 1);
    assert_int_equal(cmds_run(&s, "/quit", 0), CMDS_QUIT);
    assert_int_equal(cmds_run(&s, "/q", 0), CMDS_QUIT);
    /* Commands that touch the conversation wait for the answer to finish. */
    assert_int_equal(cmds_run(&s, "/clear", 1), CMDS_FAIL);
    assert_non_null(strstr(o.last, "wait"));
    assert_int_equal(cmds_run(&s, "/eps 2", 1), CMDS_FAIL);
    assert_int_equal(cmds_run(&s, "/save", 0), CMDS_FAIL);   /* no file name */
    assert_non_null(strstr(o.last, "FILE"));
    /* Scripted sessions have no panel: a note, not a failure. */
    s.toggle_panel = NULL;
    assert_int_equal(cmds_run(&s, "/panel", 0), CMDS_OK);
    assert_non_null(strstr(o.last, "--report json"));
    char big[6000];
    memset(big, 'x', sizeof big);
    memcpy(big, "/save ", 6);
    big[sizeof big - 1] = 0;
    assert_int_equal(cmds_run(&s, big, 0), CMDS_FAIL);
    assert_non_null(strstr(o.last, "too long"));
}

static void test_script_parse(void **state)
{
    (void)state;
    const char *text = "# comment\n\n  \t\nhello\r\n/eps 0.5\nmulti\\\nline\\\nmsg\n"
                       "  # indented comment\nlast without newline";
    struct script s;
    char err[128];
    assert_int_equal(script_parse(text, strlen(text), &s, err, sizeof err), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.items[0], "hello");
    assert_int_equal(s.line[0], 4);
    assert_string_equal(s.items[1], "/eps 0.5");
    assert_string_equal(s.items[2], "multi\nline\nmsg");
    assert_int_equal(s.line[2], 6);
    assert_string_equal(s.items[3], "last without newline");
    script_free(&s);
    /* A NUL byte is not a script. */
    assert_int_equal(script_parse("a\0b", 3, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL"));
    /* Continuation at end of file keeps what there is; '#' inside a continued message is text. */
    const char *c2 = "a\\\n# not a comment\\";
    assert_int_equal(script_parse(c2, strlen(c2), &s, err, sizeof err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.items[0], "a\n# not a comment");
    script_free(&s);
    assert_int_equal(script_parse("", 0, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 0);
    script_free(&s);
}

static void test_save_history_roundtrip(void **state)
{
    (void)state;
    char path[4200];
    char *dir = tu_tmpfile("h.txt", path, sizeof path);
    struct cmds_session s = { 0 };
    const char *in[] = { "first message", "/eps 0.25", "two\nlines", "ünïcödé" };
    for (int i = 0; i < 4; i++) assert_int_equal(cmds_record(&s, in[i]), 0);
    char err[256];
    assert_int_equal(cmds_write_script(&s, path, 0, err, sizeof err), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct script sc;
    assert_int_equal(script_load(f, path, &sc, err, sizeof err), 0);
    fclose(f);
    assert_int_equal(sc.n, 4);
    for (int i = 0; i < 4; i++) assert_string_equal(sc.items[i], in[i]);
    script_free(&sc);
    snprintf(path, sizeof path, "%s/no/such/dir/h.txt", dir);
    assert_int_equal(cmds_write_script(&s, path, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file"));
    cmds_session_free(&s);
    tu_rmtree(dir);
}

static void test_length_limit(void **state)
{
    (void)state;
    char err[256];
    char *big = malloc(CMDS_MAX_MESSAGE + 2);
    assert_non_null(big);
    memset(big, 's', CMDS_MAX_MESSAGE);
    big[CMDS_MAX_MESSAGE] = 0;
    assert_int_equal(cmds_check_length(big, err, sizeof err), 0);
    big[CMDS_MAX_MESSAGE] = 's';
    big[CMDS_MAX_MESSAGE + 1] = 0;
    assert_int_equal(cmds_check_length(big, err, sizeof err), -1);
    assert_non_null(strstr(err, "64 KiB"));
    assert_null(strstr(err, "sss"));   /* the text itself is never quoted */
    free(big);
}

static void test_json_str(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    script_json_str(f, "a\"b\\c\n\x01\xff" "é", 10);
    fclose(f);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\n\\u0001\\ufffdé\"");
    free(buf);
}

TU_MAIN(
    cmocka_unit_test(test_table),
    cmocka_unit_test(test_dispatch),
    cmocka_unit_test(test_script_parse),
    cmocka_unit_test(test_save_history_roundtrip),
    cmocka_unit_test(test_length_limit),
    cmocka_unit_test(test_json_str))
