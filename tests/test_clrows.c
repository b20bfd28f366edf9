/* tests/test_clrows: the cluster-row store gives each cluster's rows exactly as the table
 * dequantizes them, with the norms the mechanism would compute, refuses a tampered, moved or
 * missing blob (and everything after it), and leaves the word mechanism's choices unchanged.
 * A store kept in the cache folder is opened again without reading the table, and one that
 * is damaged, sealed under another secret or of another table is never used: it is rebuilt,
 * with a note; when it cannot be written the store is per-process. */
#include "tests/testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/clrows.h"
#include "core/cluster.h"
#include "core/gguf.h"
#include "core/mech.h"
#include "core/noise.h"
#include "core/qrow.h"
#include "core/util.h"

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

static int n_raw_reads;   /* calls of raw_rows: 0 when a store opens from the cache */

static int raw_rows(void *ctx, const int32_t *ids, size_t n, uint8_t *out)
{
    struct table *t = ctx;
    n_raw_reads++;
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


/* ---- the store kept in the cache folder ---- */

static const unsigned char FP_A[32] = {1, 2, 3}, FP_B[32] = {4, 5, 6};

static int try_open_kept(struct fixture *fx, const char *cache, const unsigned char *fp,
                         struct clrows **r)
{
    char err[256];
    struct clrows_source src = {.type = GGUF_T_Q8_0, .row_bytes = fx->t.row_bytes, .dim = DIM,
                                .raw = raw_rows, .ctx = &fx->t};
    struct clrows_params rp = {.swap_dir = fx->dir, .cache_dir = cache, .fingerprint = fp,
                               .quiet = 1};
    n_raw_reads = 0;
    return clrows_open(r, fx->cl, &src, &rp, err, sizeof err);
}

static struct clrows *open_kept(struct fixture *fx, const char *cache, const unsigned char *fp)
{
    struct clrows *r;
    assert_int_equal(try_open_kept(fx, cache, fp, &r), 0);
    return r;
}

/* The kept store's file in dir (the only clrows-*.bin there): its path into out; the number
 * of files in dir whose name starts with "clrows-" or ".clrows-" (no leftovers). */
static int kept_file(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, "clrows-")) {
            n++;
            snprintf(out, cap, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    return n;
}

static void check_all_rows(struct fixture *fx, struct clrows *r)
{
    char err[256];
    float rows[(K + 1) * DIM];
    for (int32_t c = 0; c < cluster_count(fx->cl); c++) {
        const int32_t *mem;
        int m = cluster_members(fx->cl, c, &mem);
        assert_int_equal(clrows_get(r, c, rows, NULL, err, sizeof err), 0);
        for (int i = 0; i < m; i++)
            assert_memory_equal(rows + (size_t)i * DIM, fx->t.f.v + (size_t)mem[i] * DIM,
                                DIM * sizeof(float));
    }
}

/* A warm start: the kept store opens from the cache with no note, without reading the table,
 * and gives the table's rows. */
static void warm_start(struct fixture *fx, const char *cache, const unsigned char *fp)
{
    struct clrows *r = open_kept(fx, cache, fp);
    assert_true(clrows_from_cache(r));
    assert_int_equal(n_raw_reads, 0);
    assert_string_equal(clrows_note(r), "");
    check_all_rows(fx, r);
    clrows_close(r);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

static void test_kept_round_trip(void **state)
{
    struct fixture *fx = *state;
    char *cache = tu_tmpdir(), path[1024];
    struct clrows *r = open_kept(fx, cache, FP_A);
    assert_false(clrows_from_cache(r));
    assert_true(n_raw_reads > 0);
    assert_string_equal(clrows_note(r), "");
    check_all_rows(fx, r);
    clrows_close(r);
    assert_int_equal(kept_file(cache, path, sizeof path), 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    warm_start(fx, cache, FP_A);
    tu_rmtree(cache);
}

/* A flipped byte inside a blob is found when that blob is read: the store is rebuilt and the
 * read gives the table's rows; the next start uses the rebuilt store. */
static void test_kept_flipped_byte_rebuilt(void **state)
{
    struct fixture *fx = *state;
    char *cache = tu_tmpdir(), path[1024];
    clrows_close(open_kept(fx, cache, FP_A));
    assert_int_equal(kept_file(cache, path, sizeof path), 1);
    struct clrows *r = open_kept(fx, cache, FP_A);
    size_t bl = clrows_blob_bytes(r);
    flip_byte(path, (off_t)(bl + bl / 2));
    assert_true(clrows_from_cache(r));
    check_all_rows(fx, r);
    assert_true(n_raw_reads > 0);
    assert_non_null(strstr(clrows_note(r), "rebuilt"));
    clrows_close(r);
    warm_start(fx, cache, FP_A);
    tu_rmtree(cache);
}

static void refused_at_open(struct fixture *fx, const char *cache, const unsigned char *fp,
                            const char *why, int files)
{
    struct clrows *r = open_kept(fx, cache, fp);
    assert_false(clrows_from_cache(r));
    assert_true(n_raw_reads > 0);
    assert_non_null(strstr(clrows_note(r), "refused"));
    assert_non_null(strstr(clrows_note(r), why));
    check_all_rows(fx, r);
    clrows_close(r);
    char path[1024];
    assert_int_equal(kept_file(cache, path, sizeof path), files);
    warm_start(fx, cache, fp);
}

static void test_kept_truncated_rebuilt(void **state)
{
    struct fixture *fx = *state;
    char *cache = tu_tmpdir(), path[1024];
    clrows_close(open_kept(fx, cache, FP_A));
    assert_int_equal(kept_file(cache, path, sizeof path), 1);
    assert_int_equal(truncate(path, 100), 0);
    refused_at_open(fx, cache, FP_A, "truncated", 1);
    tu_rmtree(cache);
}

/* A store sealed under another user secret, put under this secret's name, is refused. */
static void test_kept_wrong_key_refused(void **state)
{
    struct fixture *fx = *state;
    char *cache = tu_tmpdir(), path[1024], old[1200], key[1100];
    clrows_close(open_kept(fx, cache, FP_A));
    assert_int_equal(kept_file(cache, path, sizeof path), 1);
    snprintf(old, sizeof old, "%s.old", path);
    assert_int_equal(rename(path, old), 0);
    /* A new secret: the old store's name is not found; a new store is built under it. */
    snprintf(key, sizeof key, "%s/secret.key", cache);
    unsigned char k[32];
    randombytes_buf(k, sizeof k);
    int fd = open(key, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, k, sizeof k), 32);
    close(fd);
    struct clrows *r = open_kept(fx, cache, FP_A);
    assert_false(clrows_from_cache(r));
    clrows_close(r);
    assert_int_equal(kept_file(cache, path, sizeof path), 2);   /* the new one and .old */
    /* The old secret's store in the new one's place. */
    DIR *d = opendir(cache);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "clrows-", 7) == 0 && !strstr(e->d_name, ".old"))
            snprintf(path, sizeof path, "%s/%s", cache, e->d_name);
    closedir(d);
    copy_file(old, path);
    unlink(old);
    refused_at_open(fx, cache, FP_A, "authentication", 1);
    tu_rmtree(cache);
}

/* Another table's store is not used: another name, and put under this table's name, refused
 * (its identity is bound into the trailer and every blob). */
static void test_kept_other_table_refused(void **state)
{
    struct fixture *fx = *state;
    char *cache = tu_tmpdir(), a[1024], b[1024];
    clrows_close(open_kept(fx, cache, FP_A));
    assert_int_equal(kept_file(cache, a, sizeof a), 1);
    struct clrows *r = open_kept(fx, cache, FP_B);
    assert_false(clrows_from_cache(r));
    clrows_close(r);
    assert_int_equal(kept_file(cache, b, sizeof b), 2);
    DIR *d = opendir(cache);
    struct dirent *e;
    while ((e = readdir(d))) {
        snprintf(b, sizeof b, "%s/%s", cache, e->d_name);
        if (strncmp(e->d_name, "clrows-", 7) == 0 && strcmp(a, b) != 0) break;
    }
    closedir(d);
    copy_file(a, b);      /* A's store under B's name */
    refused_at_open(fx, cache, FP_B, "authentication", 2);
    tu_rmtree(cache);
}

/* A disk that fills up while the store is written: the store is per-process, the rows are
 * all there, and nothing is left in the cache folder. */
static void test_kept_disk_full_falls_back(void **state)
{
    struct fixture *fx = *state;
    char *cache = tu_tmpdir(), path[1024];
    size_t bl = clrows_blob_bytes(fx->r);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    /* Room for the blobs (a per-process store) but not the kept store's trailer. */
    lim.rlim_cur = (rlim_t)(3 * bl);
    lim.rlim_max = old.rlim_max;
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
    struct clrows *r;
    /* The cache secret is written before the limit. */
    struct clrows *r0 = open_kept(fx, cache, FP_B);
    clrows_close(r0);
    assert_int_equal(kept_file(cache, path, sizeof path), 1);
    unlink(path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = try_open_kept(fx, cache, FP_A, &r);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, was);
    assert_int_equal(rc, 0);
    assert_false(clrows_from_cache(r));
    assert_non_null(strstr(clrows_note(r), "per-process"));
    check_all_rows(fx, r);
    clrows_close(r);
    assert_int_equal(kept_file(cache, path, sizeof path), 0);
    tu_rmtree(cache);
}

/* Files of other tables' stores unused for more than the cache's age limit are removed
 * when a store is used; the store in use, younger ones and other kinds of file stay, and
 * the used store's time is renewed. */
static void set_age_days(const char *path, int days)
{
    struct timespec t[2];
    t[0].tv_sec = t[1].tv_sec = time(NULL) - (time_t)days * 86400;
    t[0].tv_nsec = t[1].tv_nsec = 0;
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static void test_kept_old_stores_pruned(void **state)
{
    struct fixture *fx = *state;
    char *cache = tu_tmpdir(), a[1024], b[1024], other[1100], young[1100];
    clrows_close(open_kept(fx, cache, FP_A));
    assert_int_equal(kept_file(cache, a, sizeof a), 1);
    snprintf(other, sizeof other, "%s/clusters-old.bin", cache);
    snprintf(young, sizeof young, "%s/clrows-young.bin", cache);
    copy_file(a, other);
    copy_file(a, young);
    set_age_days(a, UTIL_CACHE_MAX_AGE_DAYS + 10);
    set_age_days(other, UTIL_CACHE_MAX_AGE_DAYS + 10);
    set_age_days(young, UTIL_CACHE_MAX_AGE_DAYS - 5);
    clrows_close(open_kept(fx, cache, FP_B));   /* builds B's store: A's is too old */
    struct stat st;
    assert_int_equal(stat(a, &st), -1);
    assert_int_equal(stat(other, &st), 0);
    assert_int_equal(stat(young, &st), 0);
    unlink(young);
    assert_int_equal(kept_file(cache, b, sizeof b), 1);
    set_age_days(b, UTIL_CACHE_MAX_AGE_DAYS + 10);
    warm_start(fx, cache, FP_B);                 /* in use: kept, its time renewed */
    assert_int_equal(stat(b, &st), 0);
    assert_true(st.st_mtime > time(NULL) - 3600);
    tu_rmtree(cache);
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
    cmocka_unit_test_setup_teardown(test_mechanism_unchanged, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kept_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kept_flipped_byte_rebuilt, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kept_truncated_rebuilt, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kept_wrong_key_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kept_other_table_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kept_disk_full_falls_back, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kept_old_stores_pruned, setup, teardown))
