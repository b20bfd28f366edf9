/* tests/test_budget: exact accounting over a scripted conversation, refusal at exhaustion,
 * rejection of bad ε and budgets, and zero cost for public and control tokens. */
#include "tests/testutil.h"

#include <math.h>

#include "core/budget.h"
#include "core/cluster.h"
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

struct mat { int n, dim; float *v; };
static int row_of(void *ctx, int32_t id, float *out)
{
    struct mat *m = ctx;
    if (id < 0 || id >= m->n) return -1;
    memcpy(out, m->v + (size_t)id * m->dim, (size_t)m->dim * sizeof(float));
    return 0;
}

/* Public and control tokens pass through unchanged at ε 0; sanitized ones cost ε. */
static void test_public_control_free(void **state)
{
    (void)state;
    const int n = 30, dim = 4;
    struct mat m = {n, dim, calloc(n * dim, sizeof(float))};
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
    assert_int_equal(cluster_build(&cl, n, dim, group, row_of, &m, &p, err, sizeof err), 0);
    struct noise *nz;
    assert_int_equal(noise_open(&nz, 1, 9, err, sizeof err), 0);
    struct mech_config cfg = {.n_vocab = n, .dim = dim, .row = row_of, .ctx = &m,
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripted_conversation),
        cmocka_unit_test(test_decimal_eps),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_public_control_free),
        cmocka_unit_test(test_stopwords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
