/* tests/test_budget: exact accounting over a scripted conversation, refusal at exhaustion,
 * rejection of bad ε and budgets, and zero cost for public and control tokens. */
#include "tests/testutil.h"

#include <math.h>

#include "core/budget.h"
#include "core/core.h"
#include "core/cluster.h"
#include "core/gguf.h"
#include "core/tokenizer.h"
#include "app/train/gguf_out.h"
#include "core/mech.h"
#include "core/noise.h"

static void test_scripted_conversation(void **state)
{
    (void)state;
    struct budget *b;
    char err[512];
    assert_int_equal(budget_open(&b, 10.0, err, sizeof err), 0);
    /* turn: sanitized tokens, ε per token */
    const struct { size_t n; double eps; } turns[] = {{4, 0.5}, {3, 1.0}, {0, 2.0}, {8, 0.25}};
    double expect = 0;
    for (size_t i = 0; i < sizeof turns / sizeof *turns; i++) {
        double cost = budget_cost(turns[i].n, turns[i].eps);
        assert_true(cost == (double)turns[i].n * turns[i].eps);
        assert_int_equal(budget_spend(b, cost, err, sizeof err), 0);
        expect += cost;
        assert_true(budget_spent(b) == expect);
        assert_true(budget_remaining(b) == 10.0 - expect);
    }
    assert_true(budget_spent(b) == 7.0);
    assert_int_equal(budget_messages(b), 4);
    /* 4 tokens at 1.0 would need 4 > 3 left: refused, nothing charged. */
    assert_int_equal(budget_spend(b, budget_cost(4, 1.0), err, sizeof err), -1);
    assert_non_null(strstr(err, "would cost ε = 4"));
    assert_non_null(strstr(err, "only 3 of the session budget 10 is left"));
    assert_true(budget_spent(b) == 7.0);
    assert_int_equal(budget_messages(b), 4);
    /* Exactly what is left is allowed; then the budget is exhausted. */
    assert_int_equal(budget_spend(b, budget_cost(3, 1.0), err, sizeof err), 0);
    assert_true(budget_remaining(b) == 0);
    assert_int_equal(budget_spend(b, budget_cost(1, 0.01), err, sizeof err), -1);
    assert_non_null(strstr(err, "only 0 of"));
    /* A message of only public/control tokens costs 0 and still goes through. */
    assert_int_equal(budget_spend(b, budget_cost(0, 1.0), err, sizeof err), 0);
    assert_true(budget_spent(b) == 10.0);
    /* Spending never goes down. */
    assert_int_equal(budget_spend(b, -1.0, err, sizeof err), -1);
    assert_int_equal(budget_spend(b, NAN, err, sizeof err), -1);
    assert_true(budget_spent(b) == 10.0);
    budget_close(b);
}

static void test_decimal_eps(void **state)
{
    (void)state;
    struct budget *b;
    char err[512];
    assert_int_equal(budget_open(&b, 1.0, err, sizeof err), 0);
    for (int i = 0; i < 10; i++) assert_int_equal(budget_spend(b, 0.1, err, sizeof err), 0);
    assert_int_equal(budget_spend(b, 0.1, err, sizeof err), -1);
    budget_close(b);
}

static void test_bad_values(void **state)
{
    (void)state;
    struct budget *b;
    char err[512];
    const double bad[] = {NAN, -1.0, 0.0, -0.0, INFINITY, -INFINITY};
    const char *why[] = {"NaN", "negative", "zero", "zero", "infinite", "infinite"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(budget_open(&b, bad[i], err, sizeof err), -1);
        assert_non_null(strstr(err, why[i]));
        assert_int_equal(budget_valid(bad[i], "ε", err, sizeof err), -1);
        assert_non_null(strstr(err, "ε"));
    }
    assert_int_equal(budget_valid(1e-3, "ε", err, sizeof err), 0);
}

/* Public and control tokens pass through unchanged at ε 0; sanitized ones cost ε. */
static void test_public_control_free(void **state)
{
    (void)state;
    const int n = 30, dim = 4;
    struct tu_mat m = {n, dim, calloc(n * dim, sizeof(float))};
    for (int i = 0; i < n * dim; i++) m.v[i] = (float)((i * 7919) % 13) - 6.0f;
    uint8_t role[30], group[30], stop[30] = {0};
    for (int i = 0; i < n; i++) {
        role[i] = i < 2 ? MECH_ROLE_CONTROL : i < 5 ? MECH_ROLE_PUBLIC : MECH_ROLE_SANITIZE;
        group[i] = role[i] == MECH_ROLE_SANITIZE ? 1 : 0;
    }
    stop[7] = 1;
    char err[256];
    struct cluster *cl;
    struct cluster_params p = {.k = 5, .quiet = 1};
    assert_int_equal(cluster_build(&cl, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    struct noise *nz;
    assert_int_equal(noise_open(&nz, 1, 9, err, sizeof err), 0);
    struct mech_config cfg = {.n_vocab = n, .dim = dim, .row = tu_mat_row, .ctx = &m,
                              .clusters = cl, .role = role, .stopword = stop, .noise = nz};
    struct mech *mc;
    assert_int_equal(mech_open(&mc, &cfg, MECH_RNM, 0.75, err, sizeof err), 0);
    for (int kind = MECH_RNM; kind <= MECH_CUSTEXT; kind++) {
        assert_int_equal(mech_set_kind(mc, kind, err, sizeof err), 0);
        for (int32_t id = 0; id < n; id++) {
            struct mech_out o;
            assert_int_equal(mech_sanitize(mc, id, &o, err, sizeof err), 0);
            if (id < 2) {
                assert_int_equal(o.kind, MECH_CONTROL);
            } else if (id < 5 || (kind == MECH_CUSTEXT && id == 7)) {
                assert_int_equal(o.kind, MECH_PUBLIC);
            } else {
                assert_true(o.kind == MECH_KEPT || o.kind == MECH_REPLACED);
                assert_true(o.eps == 0.75);
                assert_int_equal(mech_charges(mc, id), 1);
                assert_true(o.cluster_size >= 2);
                continue;
            }
            assert_int_equal(o.sent, id);
            assert_true(o.eps == 0);
            assert_int_equal(mech_charges(mc, id), 0);
        }
    }
    assert_int_equal(mech_set_eps(mc, 0, err, sizeof err), -1);
    assert_int_equal(mech_set_eps(mc, NAN, err, sizeof err), -1);
    assert_int_equal(mech_set_eps(mc, INFINITY, err, sizeof err), -1);
    assert_true(mech_eps(mc) == 0.75);
    struct mech_out o;
    assert_int_equal(mech_sanitize(mc, n, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    mech_close(mc);
    noise_close(nz);
    cluster_close(cl);
    free(m.v);
}

static void test_stopwords(void **state)
{
    (void)state;
    assert_int_equal(mech_is_stopword(" the", 4), 1);
    assert_int_equal(mech_is_stopword("The", 3), 1);
    assert_int_equal(mech_is_stopword(" card", 5), 0);
    assert_int_equal(mech_is_stopword("", 0), 0);
}

/* The shipped list documents exactly the set compiled in. */
static void test_public_set_asset(void **state)
{
    (void)state;
    FILE *f = fopen("assets/public-tokens.txt", "r");
    if (!f) fail_msg("assets/public-tokens.txt not found (run from the repository root)");
    char line[256], set[128];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || line[0] == 0) continue;
        char ch = line[0];
        if (line[0] == '\\' && line[1]) {
            switch (line[1]) {
            case 's': ch = ' '; break;
            case 't': ch = '\t'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 'v': ch = '\v'; break;
            case 'f': ch = '\f'; break;
            case '\\': ch = '\\'; break;
            case '#': ch = '#'; break;
            default: fail_msg("unknown escape in public-tokens.txt: %s", line);
            }
        } else if (line[1]) {
            fail_msg("public-tokens.txt: one character per line, got '%s'", line);
        }
        assert_true(n < sizeof set - 1);
        set[n++] = ch;
    }
    fclose(f);
    set[n] = 0;
    const char *built = mech_public_chars();
    assert_int_equal(strlen(built), n);
    for (size_t i = 0; i < n; i++) assert_non_null(strchr(built, set[i]));
    assert_int_equal(mech_is_public_piece(" , ", 3), 1);
    assert_int_equal(mech_is_public_piece(" 4", 2), 0);
    assert_int_equal(mech_is_public_piece("", 0), 0);
}

/* Through the core: a scripted conversation on stories260K with a budget of 10. */
/* A piece longer than the classifier's buffer is public only if ALL of it is punctuation:
 * 70 dashes then a word must be sanitized, not passed through at ε = 0 because its first
 * 64 bytes happen to be dashes. */
static void test_long_piece_roles(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char dashes_word[80], dashes[80];
    memset(dashes_word, '-', 70);
    memcpy(dashes_word + 70, "secret", 7);
    memset(dashes, '-', 75);
    dashes[75] = 0;
    const char *toks[] = {"<unk>", "<s>", "</s>", ",", "\xe2\x96\x81" "dog", dashes_word, dashes};
    const float scores[] = {0, 0, 0, -1, -2, -3, -4};
    const int32_t types[] = {TOK_T_UNKNOWN, TOK_T_CONTROL, TOK_T_CONTROL, TOK_T_NORMAL,
                             TOK_T_NORMAL, TOK_T_NORMAL, TOK_T_NORMAL};
    struct gguf_out *w = gguf_out_new();
    assert_non_null(w);
    gguf_out_str(w, "general.architecture", "llama");
    gguf_out_str(w, "tokenizer.ggml.model", "llama");
    gguf_out_arr_str(w, "tokenizer.ggml.tokens", toks, 7);
    gguf_out_arr_f32(w, "tokenizer.ggml.scores", scores, 7);
    gguf_out_arr_i32(w, "tokenizer.ggml.token_type", types, 7);
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/long.gguf", dir);
    if (gguf_out_write(w, path, err, sizeof err) != 0) fail_msg("gguf_out_write: %s", err);
    gguf_out_free(w);
    struct gguf *g;
    struct tokenizer *t;
    if (gguf_open(&g, path, err, sizeof err) != 0) fail_msg("%s", err);
    if (tok_open(&t, g, err, sizeof err) != 0) fail_msg("%s", err);
    uint8_t role[7], group[7], stop[7];
    mech_token_roles(t, role, group, stop);
    assert_int_equal(role[1], MECH_ROLE_CONTROL);
    assert_int_equal(role[3], MECH_ROLE_PUBLIC);
    assert_int_equal(role[4], MECH_ROLE_SANITIZE);
    assert_int_equal(role[5], MECH_ROLE_SANITIZE);   /* was PUBLIC: only 64 bytes looked at */
    assert_true(group[5] != 0);
    assert_int_equal(role[6], MECH_ROLE_PUBLIC);     /* all punctuation, however long */
    tok_close(t);
    gguf_close(g);
    tu_rmtree(dir);
}

static void test_core_accounting(void **state)
{
    (void)state;
    const char *model = tu_shared("models/stories260K.gguf");
    char *dir = tu_tmpdir();
    struct core_options o;
    core_defaults(&o);
    o.eps = 0.5;
    o.budget = 10;
    o.unit = CORE_UNIT_TOKEN;   /* the word unit is priced below */
    o.seeded = 1;
    o.seed = 11;
    o.quiet = 1;
    o.cache_dir = dir;
    struct core *c;
    char err[512];
    if (core_open(&c, model, &o, err, sizeof err)) fail_msg("%s", err);
    /* Template text: never sanitized, free. */
    struct core_batch b = {0};
    assert_int_equal(core_encode(c, "<s>", 3, CORE_SEG_TEMPLATE, 1, &b, err, sizeof err), 0);
    for (size_t i = 0; i < b.n; i++) {
        assert_int_equal(b.rep[i].kind, CORE_TOK_CONTROL);
        assert_true(b.rep[i].eps == 0);
    }
    assert_true(b.msg_eps == 0);
    core_batch_free(&b);
    assert_true(core_budget_spent(c) == 0);

    double spent = 0;
    const char *turns[] = {"Lily saw a dog.", "The dog ran, and ran!", "Tim  was  happy."};
    for (int t = 0; t < 3; t++) {
        struct core_batch m = {0};
        assert_int_equal(core_encode(c, turns[t], strlen(turns[t]), CORE_SEG_USER, 0, &m, err,
                                     sizeof err), 0);
        size_t charged = 0;
        for (size_t i = 0; i < m.n; i++) {
            const struct core_tok_report *r = &m.rep[i];
            if (r->kind == CORE_TOK_PUBLIC || r->kind == CORE_TOK_CONTROL) {
                assert_true(r->eps == 0);
                assert_string_equal(r->orig, r->sent);
            } else {
                assert_true(r->eps == 0.5);
                assert_int_equal(r->cluster_size >= 2, 1);
                charged++;
            }
            if (strcmp(r->orig, ".") == 0 || strcmp(r->orig, ",") == 0 || strcmp(r->orig, "!") == 0)
                assert_int_equal(r->kind, CORE_TOK_PUBLIC);
        }
        assert_true(charged > 0);
        assert_true(m.msg_eps == 0.5 * (double)charged);
        spent += m.msg_eps;
        assert_true(core_budget_spent(c) == spent);
        core_batch_free(&m);
    }
    /* A long message now exceeds what is left: refused, nothing appended or charged. */
    char big[400];
    memset(big, 0, sizeof big);
    for (int i = 0; i < 30; i++) strcat(big, " dog cat");
    struct core_batch m = {0};
    int rc = core_encode(c, big, strlen(big), CORE_SEG_USER, 0, &m, err, sizeof err);
    assert_int_equal(rc, CORE_EBUDGET);
    assert_non_null(strstr(err, "left"));
    assert_int_equal(m.n, 0);
    assert_true(core_budget_spent(c) == spent);
    /* Punctuation alone is free, so it still goes through at exhaustion. */
    assert_int_equal(core_encode(c, "...", 3, CORE_SEG_USER, 0, &m, err, sizeof err), 0);
    assert_true(m.msg_eps == 0);
    core_batch_free(&m);
    /* ε can be lowered mid-session; bad values are refused. */
    assert_int_equal(core_set_eps(c, NAN, err, sizeof err), -1);
    assert_int_equal(core_set_eps(c, -2, err, sizeof err), -1);
    assert_true(core_budget_spent(c) == spent);
    core_close(c);

    /* Seeded cores reproduce their output exactly. */
    char first[2][256];
    for (int k = 0; k < 2; k++) {
        if (core_open(&c, model, &o, err, sizeof err)) fail_msg("%s", err);
        struct core_batch x = {0};
        assert_int_equal(core_encode(c, "Lily and Tim played", 19, CORE_SEG_USER, 0, &x, err,
                                     sizeof err), 0);
        first[k][0] = 0;
        for (size_t i = 0; i < x.n; i++) strncat(first[k], x.rep[i].sent, 255 - strlen(first[k]));
        core_batch_free(&x);
        core_close(c);
    }
    assert_string_equal(first[0], first[1]);

    /* The word unit: each sanitized word costs ε once, however many pieces it has;
     * punctuation and numbers cost nothing. */
    o.unit = CORE_UNIT_WORD;
    o.scope = CORE_SCOPE_ALL;
    o.cluster_size = 4;
    if (core_open(&c, model, &o, err, sizeof err)) fail_msg("%s", err);
    struct core_batch w = {0};
    assert_int_equal(core_encode(c, "Lily saw a dog, 42 times!", 25, CORE_SEG_USER, 0, &w, err,
                                 sizeof err), 0);
    assert_true(w.msg_eps == 0.5 * 5);
    assert_true(core_budget_spent(c) == 0.5 * 5);
    size_t random = 0;
    for (size_t i = 0; i < w.nrep; i++) random += w.rep[i].kind == CORE_TOK_RANDOM;
    assert_int_equal(random, 1);
    core_batch_free(&w);
    core_close(c);
    tu_rmtree(dir);
}

TU_MAIN(
    cmocka_unit_test(test_scripted_conversation),
    cmocka_unit_test(test_decimal_eps),
    cmocka_unit_test(test_bad_values),
    cmocka_unit_test(test_public_control_free),
    cmocka_unit_test(test_stopwords),
    cmocka_unit_test(test_public_set_asset),
    cmocka_unit_test(test_long_piece_roles),
    cmocka_unit_test(test_core_accounting))
