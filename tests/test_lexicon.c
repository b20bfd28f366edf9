/* tests/test_lexicon: the whole-word domain of real vocabularies (Llama 3 and Llama 2 with
 * GloVe vectors): case variants fold into one entry, entries follow token-id order, groups
 * come from the public rule, a partition of the domain puts related words together, and the
 * centroids taken from the cluster-row store are the table's. */
#include "tests/testutil.h"

#include <math.h>

#include "core/clrows.h"
#include "core/cluster.h"
#include "core/embed.h"
#include "core/gguf.h"
#include "core/lexicon.h"
#include "core/tokenizer.h"

static const char *const common[] = {"the", "city", "dog", "house", "music", "red", "green"};

static int is_common(void *ctx, const char *w, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof common / sizeof *common; i++)
        if (strlen(common[i]) == n && memcmp(common[i], w, n) == 0) return 1;
    return 0;
}

struct fixture {
    struct gguf *g;
    struct tokenizer *t;
    struct embed *e;
    struct lexicon *l;
};

static int rows_of(void *ctx, const int32_t *ids, size_t n, float *out)
{
    char err[64];
    return embed_rows(ctx, ids, n, out, err, sizeof err);
}

static void open_model(struct fixture *f, const char *rel)
{
    char err[256];
    const char *path = tu_shared(rel);
    memset(f, 0, sizeof *f);
    if (gguf_open(&f->g, path, err, sizeof err) || tok_open(&f->t, f->g, err, sizeof err))
        fail_msg("%s", err);
    struct embed_options eo = {.cache_bytes = 64u << 20, .keep_mapping = 1};
    if (embed_open(&f->e, f->g, &eo, err, sizeof err)) fail_msg("%s", err);
    if (lexicon_build(&f->l, f->t, is_common, NULL, err, sizeof err)) fail_msg("%s", err);
    lexicon_set_rows(f->l, rows_of, f->e, embed_dim(f->e));
}

static void close_model(struct fixture *f)
{
    lexicon_close(f->l);
    embed_close(f->e);
    tok_close(f->t);
    gguf_close(f->g);
}

static void check_domain(const char *rel)
{
    struct fixture f;
    open_model(&f, rel);
    int32_t n = lexicon_size(f.l);
    print_message("%s: %d whole-word entries\n", rel, (int)n);
    assert_true(n > 10000);
    int32_t paris = lexicon_find(f.l, "paris", 5);
    assert_true(paris >= 0);
    size_t len;
    const char *w = lexicon_word(f.l, paris, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(w, "paris", 5);
    assert_int_equal(lexicon_find(f.l, "Paris", 5), -1);   /* lookups take lower case */
    /* The row is the lower-case token's where it exists. */
    char buf[16];
    size_t pl = tok_piece(f.t, lexicon_token(f.l, lexicon_find(f.l, "dog", 3)), 0, buf, sizeof buf);
    assert_int_equal(pl, 4);
    assert_memory_equal(buf, " dog", 4);
    /* Entries follow their lowest token id. */
    for (int32_t i = 0; i < n; i++) {
        size_t wl;
        const char *ww = lexicon_word(f.l, i, &wl);
        assert_true(wl >= 1 && wl <= LEXICON_MAX_WORD);
        for (size_t k = 0; k < wl; k++) assert_true(ww[k] >= 'a' && ww[k] <= 'z');
        assert_int_equal(lexicon_find(f.l, ww, wl), i);
        if (i > 0) assert_true(lexicon_token(f.l, i) > 0);
    }
    assert_int_equal(lexicon_groups(f.l)[lexicon_find(f.l, "the", 3)], 1);
    assert_int_equal(lexicon_groups(f.l)[paris], 2);
    close_model(&f);
}

static void test_llama3_domain(void **state)
{
    (void)state;
    check_domain("models/glove-llama3.gguf");
}

static void test_llama2_domain(void **state)
{
    (void)state;
    check_domain("models/glove-llama2.gguf");
}

/* Rows of entries as stored, through their tokens. */
static int entry_raw(void *ctx, const int32_t *ids, size_t n, uint8_t *out)
{
    struct fixture *f = ctx;
    char err[64];
    int32_t *tok = malloc((n ? n : 1) * sizeof *tok);
    assert_non_null(tok);
    for (size_t i = 0; i < n; i++) tok[i] = lexicon_token(f->l, ids[i]);
    int rc = embed_rows_raw(f->e, tok, n, out, err, sizeof err);
    free(tok);
    return rc;
}

static int store_rows(void *ctx, int32_t cid, float *out)
{
    char err[64];
    return clrows_get(ctx, cid, out, NULL, err, sizeof err);
}

/* Centroids taken a cluster at a time from the cluster-row store are the table's: every
 * entry's row finds the same nearest cluster either way. */
static void check_centroids_from_store(struct fixture *f, const struct cluster *cl)
{
    char err[256];
    int dim = embed_dim(f->e);
    int32_t n = lexicon_size(f->l);
    float *x = malloc((size_t)dim * sizeof *x);
    int32_t *near = malloc((size_t)n * 2 * sizeof *near);
    assert_non_null(x);
    assert_non_null(near);
    for (int32_t i = 0; i < n; i++) {
        assert_int_equal(lexicon_row(f->l, i, x), 0);
        near[2 * i] = lexicon_nearest(f->l, x, 1);
        near[2 * i + 1] = lexicon_nearest(f->l, x, 2);
    }
    struct clrows *r;
    struct clrows_source src = {.type = embed_type(f->e), .row_bytes = embed_row_bytes(f->e),
                                .dim = dim, .raw = entry_raw, .ctx = f};
    assert_int_equal(clrows_open(&r, cl, &src, NULL, err, sizeof err), 0);
    assert_int_equal(lexicon_centroids_from(f->l, cl, store_rows, r, err, sizeof err), 0);
    for (int32_t i = 0; i < n; i++) {
        assert_int_equal(lexicon_row(f->l, i, x), 0);
        assert_int_equal(lexicon_nearest(f->l, x, 1), near[2 * i]);
        assert_int_equal(lexicon_nearest(f->l, x, 2), near[2 * i + 1]);
    }
    free(x);
    free(near);
    clrows_close(r);
}

/* The partition over a real embedding puts cities with cities; a word of several pieces
 * lands in a cluster of its group through its centroid. */
static void test_llama2_clusters(void **state)
{
    (void)state;
    struct fixture f;
    open_model(&f, "models/glove-llama2.gguf");
    char err[256];
    struct cluster *cl = NULL;
    struct cluster_params cp = {.k = 20, .quiet = 1, .rows = lexicon_rows};
    assert_int_equal(cluster_build(&cl, lexicon_size(f.l), embed_dim(f.e), lexicon_groups(f.l),
                                   lexicon_row, f.l, &cp, err, sizeof err), 0);
    assert_int_equal(lexicon_centroids(f.l, cl, err, sizeof err), 0);
    const char *probe[] = {"paris", "monday", "guitar"};
    for (int p = 0; p < 3; p++) {
        int32_t e = lexicon_find(f.l, probe[p], strlen(probe[p]));
        assert_true(e >= 0);
        const int32_t *mem;
        int m = cluster_members(cl, cluster_of(cl, e), &mem);
        char line[2048];
        size_t o = 0;
        for (int i = 0; i < m && o < sizeof line - 80; i++) {
            size_t wl;
            const char *w = lexicon_word(f.l, mem[i], &wl);
            o += (size_t)snprintf(line + o, sizeof line - o, " %.*s", (int)wl, w);
        }
        print_message("%s:%s\n", probe[p], line);
    }
    /* A vector lands in a cluster of the group asked for. */
    float x[512];
    int32_t dog = lexicon_find(f.l, "dog", 3);
    assert_int_equal(lexicon_row(f.l, dog, x), 0);
    int32_t near = lexicon_nearest(f.l, x, 1);
    assert_true(near >= 0);
    const int32_t *mem;
    assert_true(cluster_members(cl, near, &mem) >= 2);
    assert_int_equal(lexicon_groups(f.l)[mem[0]], 1);
    assert_true(lexicon_nearest(f.l, x, 3) < 0);
    check_centroids_from_store(&f, cl);
    cluster_close(cl);
    close_model(&f);
}

/* Centroids kept with the partition (and so with its cache) are bit for bit the ones read
 * from the members' rows after clustering: a start from the cache reads no row for them. */
static void test_kept_centroids_match_rows(void **state)
{
    (void)state;
    struct fixture f;
    open_model(&f, "models/glove-llama2.gguf");
    char err[256];
    int dim = embed_dim(f.e);
    struct cluster *plain = NULL, *kept = NULL;
    struct cluster_params cp = {.k = 20, .quiet = 1, .rows = lexicon_rows};
    assert_int_equal(cluster_build(&plain, lexicon_size(f.l), dim, lexicon_groups(f.l),
                                   lexicon_row, f.l, &cp, err, sizeof err), 0);
    cp.centroids = 1;
    assert_int_equal(cluster_build(&kept, lexicon_size(f.l), dim, lexicon_groups(f.l),
                                   lexicon_row, f.l, &cp, err, sizeof err), 0);
    assert_null(cluster_centroid(plain, 0));
    assert_int_equal(cluster_count(plain), cluster_count(kept));
    float *rows = malloc(21 * (size_t)dim * sizeof *rows), *mean = malloc((size_t)dim * sizeof *mean);
    assert_non_null(rows);
    assert_non_null(mean);
    for (int32_t c = 0; c < cluster_count(kept); c++) {
        const int32_t *mem, *mem2;
        int m = cluster_members(kept, c, &mem);
        assert_int_equal(cluster_members(plain, c, &mem2), m);
        assert_memory_equal(mem, mem2, (size_t)m * sizeof *mem);
        assert_true(m <= 21);
        assert_int_equal(lexicon_rows(f.l, mem, (size_t)m, rows), 0);
        lexicon_mean(rows, (size_t)m, dim, mean);
        assert_non_null(cluster_centroid(kept, c));
        assert_memory_equal(cluster_centroid(kept, c), mean, (size_t)dim * sizeof *mean);
    }
    /* The nearest cluster of a vector is the same either way. */
    assert_int_equal(lexicon_centroids(f.l, plain, err, sizeof err), 0);
    float x[512];
    int32_t near_plain[3], near_kept[3];
    const char *probe[] = {"dog", "paris", "guitar"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lexicon_row(f.l, lexicon_find(f.l, probe[i], strlen(probe[i])), x), 0);
        near_plain[i] = lexicon_nearest(f.l, x, 2);
    }
    assert_int_equal(lexicon_centroids(f.l, kept, err, sizeof err), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lexicon_row(f.l, lexicon_find(f.l, probe[i], strlen(probe[i])), x), 0);
        near_kept[i] = lexicon_nearest(f.l, x, 2);
        assert_int_equal(near_kept[i], near_plain[i]);
    }
    free(rows);
    free(mean);
    cluster_close(plain);
    cluster_close(kept);
    close_model(&f);
}

/* A scattered batch (unsorted, repeated ids, pages far apart) read through a small cache,
 * so most pages come from the swap, gives exactly the rows read one by one. */
static void test_batch_rows_match_single(void **state)
{
    (void)state;
    char err[256];
    struct gguf *g;
    if (gguf_open(&g, tu_shared("models/glove-llama3.gguf"), err, sizeof err)) fail_msg("%s", err);
    struct embed_options eo = {.cache_bytes = 256u << 10, .page_bytes = 16u << 10,
                               .keep_mapping = 1};
    struct embed *e;
    if (embed_open(&e, g, &eo, err, sizeof err)) fail_msg("%s", err);
    int dim = embed_dim(e);
    int32_t nv = embed_n_vocab(e);
    enum { N = 300 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(((uint64_t)i * 7919u * 104729u) % (uint64_t)nv);
    ids[7] = ids[200];
    ids[N - 1] = 0;
    float *batch = malloc((size_t)N * dim * sizeof *batch), *one = malloc((size_t)dim * sizeof *one);
    assert_non_null(batch);
    assert_non_null(one);
    assert_int_equal(embed_rows(e, ids, N, batch, err, sizeof err), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(embed_row(e, ids[i], one, err, sizeof err), 0);
        assert_memory_equal(one, batch + (size_t)i * dim, (size_t)dim * sizeof *one);
    }
    free(batch);
    free(one);
    embed_close(e);
    gguf_close(g);
}

TU_MAIN(
    cmocka_unit_test(test_batch_rows_match_single),
    cmocka_unit_test(test_llama3_domain),
    cmocka_unit_test(test_llama2_domain),
    cmocka_unit_test(test_llama2_clusters),
    cmocka_unit_test(test_kept_centroids_match_rows))
