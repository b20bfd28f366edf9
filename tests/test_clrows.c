/* tests/test_clrows: the cluster-row store gives each cluster's rows exactly as the table
 * dequantizes them, with the norms the mechanism would compute, refuses a tampered, moved or
 * missing blob (and everything after it), and leaves the word mechanism's choices unchanged. */
#include "tests/testutil.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/clrows.h"
#include "core/cluster.h"
#include "core/gguf.h"
#include "core/mech.h"
#include "core/noise.h"
#include "core/qrow.h"

#define N 45        /* clusters of 20, 20 and 5 */
#define DIM 64
#define K 20

/* A Q8_0 table of N rows with random scales and quants, and its dequantized floats. */
struct table {
    size_t row_bytes;
    uint8_t *raw;
    struct tu_mat f;
};

static struct table make_table(void)
{
    struct table t;
    t.row_bytes = qrow_bytes(GGUF_T_Q8_0, DIM);
    assert_int_equal(t.row_bytes, DIM / 32 * 34);
    t.raw = malloc(N * t.row_bytes);
    t.f = (struct tu_mat){N, DIM, malloc((size_t)N * DIM * sizeof(float))};
    assert_non_null(t.raw);
    assert_non_null(t.f.v);
    randombytes_buf(t.raw, N * t.row_bytes);
    for (int i = 0; i < N; i++) {
        for (int b = 0; b < DIM / 32; b++) {
            /* A finite fp16 scale in [2^-8, 2^-1): exponent field 7..14. */
            uint8_t *blk = t.raw + (size_t)i * t.row_bytes + (size_t)b * 34;
            blk[1] = (uint8_t)((7 + randombytes_uniform(8)) << 2 | (blk[1] & 3));
        }
        assert_int_equal(qrow_dequant(GGUF_T_Q8_0, t.raw + (size_t)i * t.row_bytes,
                                      t.f.v + (size_t)i * DIM, DIM), 0);
    }
    return t;
}

static int raw_rows(void *ctx, const int32_t *ids, size_t n, uint8_t *out)
{
    struct table *t = ctx;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= N) return -1;
        memcpy(out + i * t->row_bytes, t->raw + (size_t)ids[i] * t->row_bytes, t->row_bytes);
    }
    return 0;
}

struct fixture {
    struct table t;
    struct cluster *cl;
    struct clrows *r;
    char *dir;
};

static void open_all(struct fixture *fx)
{
    char err[256];
    fx->t = make_table();
    uint8_t group[N];
    memset(group, 1, sizeof group);
    struct cluster_params p = {.k = K, .quiet = 1};
    assert_int_equal(cluster_build(&fx->cl, N, DIM, group, tu_mat_row, &fx->t.f, &p, err,
                                   sizeof err), 0);
    assert_int_equal(cluster_count(fx->cl), 3);
    fx->dir = tu_tmpdir();
    struct clrows_source src = {.type = GGUF_T_Q8_0, .row_bytes = fx->t.row_bytes, .dim = DIM,
                                .raw = raw_rows, .ctx = &fx->t};
    struct clrows_params rp = {.swap_dir = fx->dir};
    assert_int_equal(clrows_open(&fx->r, fx->cl, &src, &rp, err, sizeof err), 0);
    /* The file has no name: nothing is left in the folder. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", fx->dir);
    assert_int_equal(system(cmd), 0);
}

static void close_all(struct fixture *fx)
{
    clrows_close(fx->r);
    cluster_close(fx->cl);
    free(fx->t.raw);
    free(fx->t.f.v);
    tu_rmtree(fx->dir);
}

static void test_rows_are_the_tables(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    float rows[(K + 1) * DIM];
    double norms[K + 1];
    for (int32_t c = 0; c < cluster_count(fx->cl); c++) {
        const int32_t *mem;
        int m = cluster_members(fx->cl, c, &mem);
        assert_int_equal(clrows_get(fx->r, c, rows, norms, err, sizeof err), 0);
        for (int i = 0; i < m; i++) {
            const float *want = fx->t.f.v + (size_t)mem[i] * DIM;
            assert_memory_equal(rows + (size_t)i * DIM, want, DIM * sizeof(float));
            double s = 0;
            for (int d = 0; d < DIM; d++) s += (double)want[d] * want[d];
            double n = sqrt(s);
            assert_memory_equal(&norms[i], &n, sizeof n);
        }
    }
    assert_int_equal(clrows_get(fx->r, cluster_count(fx->cl), rows, norms, err, sizeof err), -1);
    /* Every blob has the same size, whatever its cluster's. */
    struct stat st;
    assert_int_equal(fstat(clrows_fd(fx->r), &st), 0);
    assert_int_equal((size_t)st.st_size, 3 * clrows_blob_bytes(fx->r));
}

/* Reading cluster c fails closed (rows and norms zeroed, the message says why), and so does
 * every later read, of any cluster. */
static void refused(struct fixture *fx, int32_t c, const char *why)
{
    char err[256] = "";
    float rows[(K + 1) * DIM];
    double norms[K + 1];
    memset(rows, 0x5a, sizeof rows);
    memset(norms, 0x5a, sizeof norms);
    const int32_t *mem;
    int m = cluster_members(fx->cl, c, &mem);
    assert_int_equal(clrows_get(fx->r, c, rows, norms, err, sizeof err), -1);
    assert_non_null(strstr(err, why));
    for (int i = 0; i < m * DIM; i++) assert_true(rows[i] == 0.0f);
    for (int i = 0; i < m; i++) assert_true(norms[i] == 0.0);
    assert_int_equal(clrows_get(fx->r, (c + 1) % 3, rows, norms, err, sizeof err), -1);
    assert_non_null(strstr(err, "refusing"));
}

static void test_tampered_blob_refused(void **state)
{
    struct fixture *fx = *state;
    int fd = clrows_fd(fx->r);
    size_t bl = clrows_blob_bytes(fx->r);
    uint8_t byte;
    off_t at = (off_t)(bl + bl / 2);            /* inside cluster 1's ciphertext */
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 1;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    refused(fx, 1, "authentication");
}

static void test_moved_blob_refused(void **state)
{
    struct fixture *fx = *state;
    int fd = clrows_fd(fx->r);
    size_t bl = clrows_blob_bytes(fx->r);
    uint8_t *b = malloc(bl);
    assert_non_null(b);
    /* Cluster 0's intact blob put in cluster 2's place: the index bound in refuses it. */
    assert_int_equal(pread(fd, b, bl, 0), (ssize_t)bl);
    assert_int_equal(pwrite(fd, b, bl, (off_t)(2 * bl)), (ssize_t)bl);
    free(b);
    refused(fx, 2, "authentication");
}

static void test_truncated_file_refused(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(ftruncate(clrows_fd(fx->r), (off_t)clrows_blob_bytes(fx->r)), 0);
    refused(fx, 1, "missing");
}

/* The RNM and CusText+ mechanisms choose exactly as they do reading rows by id, draw for
 * draw, on the same seeded noise. */
static void test_mechanism_unchanged(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    uint8_t role[N];
    memset(role, MECH_ROLE_SANITIZE, sizeof role);
    int kinds[2] = {MECH_RNM, MECH_CUSTEXT};
    for (int k = 0; k < 2; k++) {
        struct noise *na, *nb;
        assert_int_equal(noise_open(&na, 1, 7, err, sizeof err), 0);
        assert_int_equal(noise_open(&nb, 1, 7, err, sizeof err), 0);
        struct mech_config ca = {.n_vocab = N, .dim = DIM, .row = tu_mat_row, .ctx = &fx->t.f,
                                 .clusters = fx->cl, .role = role, .noise = na};
        struct mech_config cb = {.n_vocab = N, .dim = DIM, .row = tu_mat_row, .ctx = &fx->t.f,
                                 .clusters = fx->cl, .role = role, .noise = nb, .crows = fx->r};
        struct mech *ma, *mb;
        assert_int_equal(mech_open(&ma, &ca, kinds[k], 2.0, err, sizeof err), 0);
        assert_int_equal(mech_open(&mb, &cb, kinds[k], 2.0, err, sizeof err), 0);
        float x[DIM];
        for (int t = 0; t < 300; t++) {
            for (int d = 0; d < DIM; d++) x[d] = (float)randombytes_uniform(2001) / 1000.0f - 1;
            int32_t cid = (int32_t)randombytes_uniform(3);
            struct mech_out oa, ob;
            assert_int_equal(mech_sanitize_vec(ma, cid, x, &oa, err, sizeof err), 0);
            assert_int_equal(mech_sanitize_vec(mb, cid, x, &ob, err, sizeof err), 0);
            assert_int_equal(oa.sent, ob.sent);
            assert_int_equal(oa.cluster_size, ob.cluster_size);
        }
        mech_close(ma);
        mech_close(mb);
        noise_close(na);
        noise_close(nb);
    }
}

/* Every test gets the store and its table fresh. */
static int setup(void **state)
{
    struct fixture *fx = malloc(sizeof *fx);
    if (!fx) return -1;
    open_all(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    close_all(*state);
    free(*state);
    return 0;
}

TU_MAIN(
    cmocka_unit_test_setup_teardown(test_rows_are_the_tables, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tampered_blob_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_moved_blob_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncated_file_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_mechanism_unchanged, setup, teardown))
