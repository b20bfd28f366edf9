/* Tests of app/opts: the shared llama.cpp-style flags, extra per-command flags, positional
 * arguments, value checking and prompt files. */
#include "tests/testutil.h"

#include "app/opts.h"
#include "gpu/decoder.h"

#define ARGV(...) ((char *[]){"cmd", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"cmd", __VA_ARGS__}) / sizeof(char *)))
#define ALL (OPT_ENGINE | OPT_PROMPT | OPT_PREDICT | OPT_SAMPLING)

static int parse(struct opts *o, int argc, char **argv, unsigned accept, char *err)
{
    opts_defaults(o);
    return opts_parse(o, argc, argv, accept, NULL, NULL, NULL, err, 256);
}

static void test_common_flags(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    char **a = ARGV("-m", "model.gguf", "-p", "-starts with a dash", "-n", "-1", "-t", "3",
                    "--ctx-size=512", "-s", "18446744073709551614", "--temp", "0", "--top-k",
                    "5", "--top-p", "0.5", "--min-p", "0.1", "--repeat-penalty", "1.1",
                    "--repeat-last-n", "32", "--device", "cl:1");
    int n = ARGC("-m", "model.gguf", "-p", "-starts with a dash", "-n", "-1", "-t", "3",
                 "--ctx-size=512", "-s", "18446744073709551614", "--temp", "0", "--top-k", "5",
                 "--top-p", "0.5", "--min-p", "0.1", "--repeat-penalty", "1.1",
                 "--repeat-last-n", "32", "--device", "cl:1");
    assert_int_equal(parse(&o, n, a, ALL, err), 0);
    assert_string_equal(o.model, "model.gguf");
    assert_string_equal(o.prompt, "-starts with a dash");
    assert_int_equal(o.n_predict, -1);
    assert_int_equal(o.threads, 3);
    assert_int_equal(o.ctx, 512);
    assert_true(o.seed_given);
    assert_true(o.sp.seed == 18446744073709551614ULL);
    assert_true(o.sp.temp == 0.0f);
    assert_int_equal(o.sp.top_k, 5);
    assert_true(o.sp.top_p == 0.5f);
    assert_true(o.sp.min_p > 0.099f && o.sp.min_p < 0.101f);
    assert_true(o.sp.repeat_penalty > 1.09f && o.sp.repeat_penalty < 1.11f);
    assert_int_equal(o.sp.repeat_last_n, 32);
    assert_int_equal(o.device, DEC_DEV_CL);
    assert_int_equal(o.cl_index, 1);
}

static void test_defaults_and_seed(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    assert_int_equal(parse(&o, ARGC("-m", "x"), ARGV("-m", "x"), ALL, err), 0);
    assert_int_equal(o.n_predict, -1);
    assert_int_equal(o.threads, 0);
    assert_int_equal(o.device, DEC_DEV_AUTO);
    assert_false(o.seed_given);
    assert_true(o.sp.seed == SAMPLER_SEED_RANDOM);   /* drawn at sampler_open */
    assert_null(o.prompt);
    assert_int_equal(parse(&o, ARGC("--device", "cpu"), ARGV("--device", "cpu"), ALL, err), 0);
    assert_int_equal(o.device, DEC_DEV_CPU);
    assert_int_equal(parse(&o, ARGC("-h"), ARGV("-h"), ALL, err), 1);
    assert_int_equal(parse(&o, ARGC("--help"), ARGV("--help"), ALL, err), 1);
}

static void test_errors(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    static const char *bad[][2] = {
        {"--temp", "abc"},   {"--temp", "-1"},     {"-n", "1.5"},     {"-t", "-2"},
        {"--top-p", "1.5"},  {"--min-p", "nan"},   {"-s", "-5"},      {"--device", "gpu"},
        {"--device", "cl:x"}, {"-c", "99999999999"}, {"--repeat-penalty", "0"},
        {"--top-k", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {"cmd", (char *)bad[i][0], (char *)bad[i][1], NULL};
        err[0] = '\0';
        assert_int_equal(parse(&o, 3, argv, ALL, err), -1);
        if (!strstr(err, bad[i][0])) fail_msg("error '%s' does not name %s", err, bad[i][0]);
    }
    assert_int_equal(parse(&o, ARGC("-m"), ARGV("-m"), ALL, err), -1);
    assert_non_null(strstr(err, "needs a value"));
    assert_int_equal(parse(&o, ARGC("--bogus"), ARGV("--bogus"), ALL, err), -1);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(parse(&o, ARGC("-p", "a", "-f", "b"), ARGV("-p", "a", "-f", "b"), ALL, err), -1);
    /* a group the command does not accept is unknown to it */
    assert_int_equal(parse(&o, ARGC("--temp", "1"), ARGV("--temp", "1"), OPT_MODEL, err), -1);
    assert_non_null(strstr(err, "unknown option"));
}

struct ex {
    int pieces;
    const char *eps;
};

static int ex_fn(void *ctx, int id, const char *val, char *err, size_t errlen)
{
    struct ex *e = ctx;
    if (id == 1) e->pieces = 1;
    if (id == 2) {
        if (!strcmp(val, "bad")) {
            snprintf(err, errlen, "--eps: bad value");
            return -1;
        }
        e->eps = val;
    }
    return 0;
}

static void test_extra_and_positional(void **state)
{
    (void)state;
    static const struct opts_extra extra[] = {
        {"pieces", 0, 0, 1, "    --pieces   print pieces"},
        {"eps", 'e', 1, 2, "-e, --eps E    epsilon"},
        {NULL, 0, 0, 0, NULL},
    };
    struct opts o;
    struct ex e = {0, NULL};
    char err[256];
    char *argv[] = {"cmd", "hello", "-m", "m.gguf", "--pieces", "-e", "2.5", "--", "-not-a-flag", NULL};
    opts_defaults(&o);
    assert_int_equal(opts_parse(&o, 9, argv, OPT_MODEL, extra, ex_fn, &e, err, sizeof err), 0);
    assert_int_equal(e.pieces, 1);
    assert_string_equal(e.eps, "2.5");
    assert_int_equal(o.n_args, 2);
    assert_string_equal(o.args[0], "hello");
    assert_string_equal(o.args[1], "-not-a-flag");
    char *argv2[] = {"cmd", "--eps=bad", NULL};
    opts_defaults(&o);
    assert_int_equal(opts_parse(&o, 2, argv2, OPT_MODEL, extra, ex_fn, &e, err, sizeof err), -1);
    assert_string_equal(err, "--eps: bad value");
    char *argv3[] = {"cmd", "--pieces=1", NULL};
    opts_defaults(&o);
    assert_int_equal(opts_parse(&o, 2, argv3, OPT_MODEL, extra, ex_fn, &e, err, sizeof err), -1);
    /* usage lists accepted groups and the extras */
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    opts_usage(f, OPT_MODEL | OPT_SAMPLING, extra);
    fclose(f);
    assert_non_null(strstr(buf, "--model"));
    assert_non_null(strstr(buf, "--top-k"));
    assert_non_null(strstr(buf, "--pieces"));
    assert_null(strstr(buf, "--ctx-size"));
}

static void test_prompt_file(void **state)
{
    (void)state;
    char path[512];
    char *dir = tu_tmpfile("p.txt", path, sizeof path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 2000; i++) fputs("line of prompt text\n", f);
    fclose(f);
    struct opts o;
    char err[256], *text;
    size_t len;
    opts_defaults(&o);
    o.prompt_file = path;
    assert_int_equal(opts_read_prompt(&o, &text, &len, err, sizeof err), 0);
    assert_int_equal(len, 2000 * 20);
    assert_int_equal(strlen(text), len);
    free(text);
    o.prompt_file = NULL;
    o.prompt = "";
    assert_int_equal(opts_read_prompt(&o, &text, &len, err, sizeof err), 0);
    assert_int_equal(len, 0);
    free(text);
    o.prompt = NULL;
    assert_int_equal(opts_read_prompt(&o, &text, &len, err, sizeof err), 0);
    assert_null(text);
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    o.prompt_file = path;
    assert_int_equal(opts_read_prompt(&o, &text, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing.txt"));
    tu_rmtree(dir);
}

/* opts_read_stream: the whole stream, growing past its first 64 KiB buffer; the size cap. */
static void test_read_stream(void **state)
{
    (void)state;
    size_t n = 200000;
    char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++) data[i] = (char)('a' + i % 26);
    FILE *f = fmemopen(data, n, "rb");
    assert_non_null(f);
    char err[256], *text;
    size_t len;
    assert_int_equal(opts_read_stream(f, "mem", 1, &text, &len, err, sizeof err), 0);
    fclose(f);
    assert_int_equal(len, n);
    assert_memory_equal(text, data, n);
    assert_int_equal(text[n], '\0');
    free(text);
    /* a cap of 0 GiB refuses anything that does not fit the first buffer */
    f = fmemopen(data, n, "rb");
    assert_non_null(f);
    assert_int_equal(opts_read_stream(f, "mem", 0, &text, &len, err, sizeof err), -1);
    fclose(f);
    assert_null(text);
    assert_string_equal(err, "mem: larger than 0 GiB");
    free(data);
    assert_int_equal(opts_read_file("/nonexistent/x.txt", 1, &text, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.txt: "));
}

/* Positional arguments are not limited in number: they are gathered in order at the front of
 * argv, however many flags are mixed in. */
static void test_many_args(void **state)
{
    (void)state;
    enum { N = 5000 };
    static char words[N][8];
    static char *argv[1 + N + 4 + 1];
    int argc = 0;
    argv[argc++] = "cmd";
    for (int i = 0; i < N; i++) {
        snprintf(words[i], sizeof words[i], "w%d", i);
        argv[argc++] = words[i];
        if (i == 100) { argv[argc++] = "-m"; argv[argc++] = "m.gguf"; }
        if (i == 4000) { argv[argc++] = "-t"; argv[argc++] = "2"; }
    }
    argv[argc] = NULL;
    struct opts o;
    char err[256];
    assert_int_equal(parse(&o, argc, argv, ALL, err), 0);
    assert_string_equal(o.model, "m.gguf");
    assert_int_equal(o.threads, 2);
    assert_int_equal(o.n_args, N);
    for (int i = 0; i < N; i++) assert_string_equal(o.args[i], words[i]);
}

/* OPT_ARGS_END_FLAGS: flags before the first argument are read; from it on every word is
 * text, dashes and "--" included. Without it the same words are flags. */
static void test_args_end_flags(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    char **a = ARGV("-m", "m.gguf", "pay", "-5", "--temp", "--", "now");
    int n = ARGC("-m", "m.gguf", "pay", "-5", "--temp", "--", "now");
    assert_int_equal(parse(&o, n, a, OPT_MODEL | OPT_ARGS_END_FLAGS, err), 0);
    assert_string_equal(o.model, "m.gguf");
    assert_int_equal(o.n_args, 5);
    static const char *want[] = {"pay", "-5", "--temp", "--", "now"};
    for (int i = 0; i < 5; i++) assert_string_equal(o.args[i], want[i]);
    char **b = ARGV("pay", "-m", "m.gguf");
    assert_int_equal(parse(&o, 4, b, OPT_MODEL | OPT_ARGS_END_FLAGS, err), 0);
    assert_null(o.model);
    assert_int_equal(o.n_args, 3);
    char **c = ARGV("pay", "-m", "m.gguf");
    assert_int_equal(parse(&o, 4, c, OPT_MODEL, err), 0);
    assert_string_equal(o.model, "m.gguf");
    assert_int_equal(o.n_args, 1);
    assert_string_equal(o.args[0], "pay");
}

struct opt_val {
    int seen;
    const char *val;
};

static int opt_fn(void *ctx, int id, const char *val, char *err, size_t errlen)
{
    (void)id, (void)err, (void)errlen;
    struct opt_val *v = ctx;
    v->seen++;
    v->val = val;
    return 0;
}

/* An optional value: "--save=F", "--save F", or "--save" alone (before another option or
 * at the end), which leaves the next option to be parsed as one. */
static void test_optional_value(void **state)
{
    (void)state;
    static const struct opts_extra extra[] = {
        {"save", 0, OPTS_ARG_OPTIONAL, 1, "    --save [F]  save"},
        {NULL, 0, 0, 0, NULL},
    };
    struct opts o;
    char err[256];
    struct opt_val v = {0, NULL};
    char *a[] = {"cmd", "--save", "f.json", "-m", "m.gguf", NULL};
    opts_defaults(&o);
    assert_int_equal(opts_parse(&o, 5, a, OPT_MODEL, extra, opt_fn, &v, err, sizeof err), 0);
    assert_string_equal(v.val, "f.json");
    assert_string_equal(o.model, "m.gguf");
    assert_int_equal(o.n_args, 0);
    char *b[] = {"cmd", "--save", "-m", "m.gguf", NULL};
    v.seen = 0;
    opts_defaults(&o);
    assert_int_equal(opts_parse(&o, 4, b, OPT_MODEL, extra, opt_fn, &v, err, sizeof err), 0);
    assert_int_equal(v.seen, 1);
    assert_null(v.val);
    assert_string_equal(o.model, "m.gguf");
    char *c[] = {"cmd", "--save=g.json", NULL};
    opts_defaults(&o);
    assert_int_equal(opts_parse(&o, 2, c, OPT_MODEL, extra, opt_fn, &v, err, sizeof err), 0);
    assert_string_equal(v.val, "g.json");
    char *d[] = {"cmd", "--save", NULL};
    opts_defaults(&o);
    assert_int_equal(opts_parse(&o, 2, d, OPT_MODEL, extra, opt_fn, &v, err, sizeof err), 0);
    assert_null(v.val);
}

TU_MAIN(
    cmocka_unit_test(test_optional_value),
    cmocka_unit_test(test_common_flags),  cmocka_unit_test(test_defaults_and_seed),
    cmocka_unit_test(test_errors),        cmocka_unit_test(test_extra_and_positional),
    cmocka_unit_test(test_prompt_file),   cmocka_unit_test(test_read_stream),
    cmocka_unit_test(test_many_args),     cmocka_unit_test(test_args_end_flags))
