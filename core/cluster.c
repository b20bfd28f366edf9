/* core/cluster: greedy nearest-neighbour partition of the vocabulary (see cluster.h).
 *
 * The on-disk cache. The partition is computed from public model weights, so it is not a
 * secret; what matters is that nobody substitutes a different one (say, one that puts a
 * sensitive token in a cluster of its own, which would send it unchanged). The cache is
 * therefore sealed with crypto_secretbox (XSalsa20-Poly1305) under a key derived with
 * crypto_kdf from a per-user secret file (32 random bytes, mode 0600, created on first use
 * in the cache directory). A key living only in this process would make the cache useless
 * across runs. What this protects: a cache file written, swapped or corrupted by anyone who
 * cannot read that secret (other users with write access to a shared cache directory,
 * restored backups, disk corruption). What it does not protect: a process running as the
 * same user, which can read the secret. Every cache is also validated structurally; on any
 * failure the partition is recomputed, never trusted. */
#include "core/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <sodium.h>

struct cluster {
    int32_t n_vocab, n_clusters;
    int k;
    int32_t *of;          /* n_vocab: cluster id or -1 */
    int32_t *start;       /* n_clusters + 1 offsets into members */
    int32_t *members;     /* clustered ids, cluster by cluster, ascending inside each */
    int32_t n_members, cap_clusters;
    int from_cache;
    char note[8400];       /* why the cache was not used (paths can be long) */
};

#define ROW_BLOCK 256
#define COL_BLOCK 4096

/* ---------------------------------------------------------------------------------------
 * Greedy construction for one group */

struct nbr {
    float s;
    int32_t j;       /* position in the active matrix */
};

/* a before b: higher similarity, ties to the lower position (= lower token id). */
static int better(float sa, int32_t ja, float sb, int32_t jb)
{
    return sa > sb || (sa == sb && ja < jb);
}

static void top_insert(struct nbr *list, int *len, int cap, float s, int32_t j)
{
    int n = *len;
    if (n == cap && !better(s, j, list[n - 1].s, list[n - 1].j)) return;
    int at = n < cap ? n : cap - 1;
    while (at > 0 && better(s, j, list[at - 1].s, list[at - 1].j)) {
        list[at] = list[at - 1];
        at--;
    }
    list[at].s = s;
    list[at].j = j;
    if (n < cap) *len = n + 1;
}

struct builder {
    int dim, k;
    int32_t n;            /* tokens in the group */
    const int32_t *ids;   /* their ids, ascending */
    float *a;             /* active rows (normalised), n_act x dim, compacted on refresh */
    int32_t n_act;
    int32_t *act_local;   /* active position -> local index */
    int32_t *pos;         /* local index -> active position or -1 */
    unsigned char *done;  /* local index assigned */
    struct nbr *nb;       /* n_act x m */
    int *nb_len;
    int m, complete;
    float *blk;           /* ROW_BLOCK x COL_BLOCK scores */
    int quiet;
    int32_t assigned, progress_shown;
};

static void progress(struct builder *b, int force)
{
    if (b->quiet || b->n < 8192) return;
    int pct = (int)((int64_t)b->assigned * 100 / b->n);
    if (pct != b->progress_shown || force) {
        fprintf(stderr, "\rcmif: clustering %d tokens (K = %d): %3d%%", (int)b->n, b->k, pct);
        if (force) fputc('\n', stderr);
        fflush(stderr);
        b->progress_shown = pct;
    }
}

/* Compact the active matrix to the unassigned rows and recompute every row's top-m list
 * with blocked SGEMM. */
static int refresh(struct builder *b, char *err, size_t errlen)
{
    int32_t w = 0;
    for (int32_t p = 0; p < b->n_act; p++) {
        int32_t l = b->act_local[p];
        if (b->done[l]) { b->pos[l] = -1; continue; }
        if (w != p) memmove(b->a + (size_t)w * b->dim, b->a + (size_t)p * b->dim,
                            (size_t)b->dim * sizeof(float));
        b->act_local[w] = l;
        b->pos[l] = w;
        w++;
    }
    b->n_act = w;
    int want = 3 * b->k + 8;
    b->m = b->n_act - 1 < want ? b->n_act - 1 : want;
    b->complete = b->m == b->n_act - 1;
    free(b->nb);
    free(b->nb_len);
    b->nb = NULL;
    b->nb_len = NULL;
    if (b->m <= 0) return 0;
    b->nb = malloc((size_t)b->n_act * (size_t)b->m * sizeof *b->nb);
    b->nb_len = calloc((size_t)b->n_act, sizeof *b->nb_len);
    if (!b->nb || !b->nb_len) {
        snprintf(err, errlen, "cluster: out of memory for neighbour lists (%d tokens)", (int)b->n_act);
        return -1;
    }
    for (int32_t r0 = 0; r0 < b->n_act; r0 += ROW_BLOCK) {
        int rn = b->n_act - r0 < ROW_BLOCK ? (int)(b->n_act - r0) : ROW_BLOCK;
        for (int32_t c0 = 0; c0 < b->n_act; c0 += COL_BLOCK) {
            int cn = b->n_act - c0 < COL_BLOCK ? (int)(b->n_act - c0) : COL_BLOCK;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rn, cn, b->dim, 1.0f,
                        b->a + (size_t)r0 * b->dim, b->dim, b->a + (size_t)c0 * b->dim, b->dim,
                        0.0f, b->blk, cn);
            for (int r = 0; r < rn; r++) {
                struct nbr *list = b->nb + (size_t)(r0 + r) * b->m;
                int *len = &b->nb_len[r0 + r];
                const float *row = b->blk + (size_t)r * cn;
                for (int c = 0; c < cn; c++) {
                    if (c0 + c == r0 + r) continue;
                    if (*len == b->m && row[c] < list[b->m - 1].s) continue;
                    top_insert(list, len, b->m, row[c], c0 + c);
                }
            }
        }
        if (!b->quiet && b->n >= 8192) {
            fprintf(stderr, "\rcmif: clustering %d tokens (K = %d): %3d%% (similarities %d%%)",
                    (int)b->n, b->k, (int)((int64_t)b->assigned * 100 / b->n),
                    (int)((int64_t)(r0 + rn) * 100 / b->n_act));
            fflush(stderr);
        }
    }
    return 0;
}

static int cmp_i32(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

static int push_cluster(struct cluster *c, const int32_t *ids, int n, char *err, size_t errlen)
{
    if (c->n_clusters + 1 >= c->cap_clusters) {
        int32_t nc = c->cap_clusters ? c->cap_clusters * 2 : 64;
        int32_t *s = realloc(c->start, (size_t)nc * sizeof *s);
        if (!s) { snprintf(err, errlen, "cluster: out of memory"); return -1; }
        c->start = s;
        c->cap_clusters = nc;
    }
    int32_t at = c->n_members;
    memcpy(c->members + at, ids, (size_t)n * sizeof *ids);
    qsort(c->members + at, (size_t)n, sizeof *ids, cmp_i32);
    c->start[c->n_clusters] = at;
    c->n_members += n;
    c->n_clusters++;
    c->start[c->n_clusters] = c->n_members;
    return 0;
}

static int build_group(struct cluster *c, const int32_t *ids, int32_t n, int dim,
                       cluster_row_fn row, void *ctx, int k, int quiet, char *err, size_t errlen)
{
    int rc = -1;
    struct builder b;
    memset(&b, 0, sizeof b);
    b.dim = dim;
    b.k = k;
    b.n = n;
    b.ids = ids;
    b.quiet = quiet;
    b.progress_shown = -1;
    int32_t first_cluster = c->n_clusters;
    int32_t *pick = malloc((size_t)k * sizeof *pick);
    struct nbr *tmp = malloc((size_t)k * sizeof *tmp);
    b.a = malloc((size_t)n * (size_t)dim * sizeof(float));
    b.act_local = malloc((size_t)n * sizeof *b.act_local);
    b.pos = malloc((size_t)n * sizeof *b.pos);
    b.done = calloc((size_t)n, 1);
    b.blk = malloc((size_t)ROW_BLOCK * COL_BLOCK * sizeof(float));
    if (!pick || !tmp || !b.a || !b.act_local || !b.pos || !b.done || !b.blk) {
        snprintf(err, errlen, "cluster: out of memory for %d rows of %d floats", (int)n, dim);
        goto out;
    }
    for (int32_t i = 0; i < n; i++) {
        float *r = b.a + (size_t)i * dim;
        if (row(ctx, ids[i], r) != 0) {
            snprintf(err, errlen, "cluster: cannot read the embedding row of token %d", (int)ids[i]);
            goto out;
        }
        double ss = 0;
        for (int d = 0; d < dim; d++) {
            if (!isfinite(r[d])) {
                snprintf(err, errlen, "cluster: embedding row of token %d is not finite", (int)ids[i]);
                goto out;
            }
            ss += (double)r[d] * r[d];
        }
        if (ss > 0) {
            float inv = (float)(1.0 / sqrt(ss));
            for (int d = 0; d < dim; d++) r[d] *= inv;
        }
        b.act_local[i] = i;
        b.pos[i] = i;
    }
    b.n_act = n;
    if (refresh(&b, err, errlen)) goto out;
    int32_t since_refresh = 0;
    for (int32_t seed = 0; seed < n; seed++) {
        if (b.done[seed]) continue;
        int np = 0;
        pick[np++] = seed;
        b.done[seed] = 1;
        int32_t p = b.pos[seed];
        if (b.m > 0) {
            const struct nbr *list = b.nb + (size_t)p * b.m;
            for (int i = 0; i < b.nb_len[p] && np < k; i++) {
                int32_t l = b.act_local[list[i].j];
                if (!b.done[l]) pick[np++] = l;
            }
        }
        if (np < k && !b.complete) {
            /* The list ran out: exact scan of every unassigned active row. */
            int nt = 0;
            const float *sr = b.a + (size_t)p * dim;
            for (int32_t j = 0; j < b.n_act; j++) {
                int32_t l = b.act_local[j];
                if (b.done[l]) continue;
                float s = cblas_sdot(dim, sr, 1, b.a + (size_t)j * dim, 1);
                top_insert(tmp, &nt, k - 1, s, j);
            }
            np = 1;
            for (int i = 0; i < nt; i++) pick[np++] = b.act_local[tmp[i].j];
        }
        for (int i = 0; i < np; i++) {
            b.done[pick[i]] = 1;
            pick[i] = ids[pick[i]];
        }
        if (push_cluster(c, pick, np, err, errlen)) goto out;
        b.assigned += np;
        since_refresh += np;
        progress(&b, 0);
        int32_t left = n - b.assigned;
        if (!b.complete && since_refresh * 2 >= b.n_act && left >= 2 * k) {
            if (refresh(&b, err, errlen)) goto out;
            since_refresh = 0;
        }
    }
    /* A last cluster of one token joins the previous cluster of its group. */
    if (c->n_clusters - first_cluster >= 2 &&
        c->start[c->n_clusters] - c->start[c->n_clusters - 1] == 1) {
        c->n_clusters--;
        c->start[c->n_clusters] = c->n_members;
        int32_t s0 = c->start[c->n_clusters - 1];
        qsort(c->members + s0, (size_t)(c->n_members - s0), sizeof *c->members, cmp_i32);
    }
    progress(&b, 1);
    rc = 0;
out:
    free(pick);
    free(tmp);
    free(b.a);
    free(b.act_local);
    free(b.pos);
    free(b.done);
    free(b.blk);
    free(b.nb);
    free(b.nb_len);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Cache */

#define CACHE_MAGIC "CMIFCLC1"
#define PAYLOAD_MAGIC "CMIFCL01"

static int mkdirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* The per-user secret: read it, or create it (0600) on first use. */
static int user_secret(const char *dir, unsigned char key[crypto_kdf_KEYBYTES], char *note,
                       size_t notelen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/secret.key", dir) >= (int)sizeof path) return -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) { snprintf(note, notelen, "cannot create %s: %s", path, strerror(errno)); return -1; }
        unsigned char k[crypto_kdf_KEYBYTES];
        crypto_kdf_keygen(k);
        ssize_t w = write(fd, k, sizeof k);
        int ok = w == (ssize_t)sizeof k && fsync(fd) == 0;
        close(fd);
        if (!ok) {
            sodium_memzero(k, sizeof k);
            unlink(path);
            snprintf(note, notelen, "cannot write %s", path);
            return -1;
        }
        memcpy(key, k, sizeof k);
        sodium_memzero(k, sizeof k);
        return 0;
    }
    if (fd < 0) { snprintf(note, notelen, "cannot open %s: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0 || st.st_size != crypto_kdf_KEYBYTES) {
        close(fd);
        snprintf(note, notelen, "%s is not a private 32-byte file of this user; cache not used", path);
        return -1;
    }
    ssize_t r = read(fd, key, crypto_kdf_KEYBYTES);
    close(fd);
    if (r != crypto_kdf_KEYBYTES) { snprintf(note, notelen, "cannot read %s", path); return -1; }
    return 0;
}

struct cache_ctx {
    unsigned char seal[crypto_secretbox_KEYBYTES];
    unsigned char id[32];      /* fingerprint + K + groups + version */
    char path[4096];
};

static int cache_prepare(struct cache_ctx *cc, const struct cluster_params *p, int32_t n_vocab,
                         const uint8_t *group, char *note, size_t notelen)
{
    if (mkdirs(p->cache_dir)) {
        snprintf(note, notelen, "cannot create cache directory %s: %s", p->cache_dir, strerror(errno));
        return -1;
    }
    unsigned char master[crypto_kdf_KEYBYTES];
    if (user_secret(p->cache_dir, master, note, notelen)) return -1;
    unsigned char namekey[32];
    crypto_kdf_derive_from_key(cc->seal, sizeof cc->seal, 1, "cmifclus", master);
    crypto_kdf_derive_from_key(namekey, sizeof namekey, 2, "cmifclus", master);
    sodium_memzero(master, sizeof master);

    crypto_generichash_state st;
    uint32_t hdr[3] = { 1u /* algorithm version */, (uint32_t)p->k, (uint32_t)n_vocab };
    crypto_generichash_init(&st, NULL, 0, sizeof cc->id);
    crypto_generichash_update(&st, (const unsigned char *)"cmif-cluster", 12);
    crypto_generichash_update(&st, p->fingerprint, 32);
    crypto_generichash_update(&st, (const unsigned char *)hdr, sizeof hdr);
    crypto_generichash_update(&st, group, (size_t)n_vocab);
    crypto_generichash_final(&st, cc->id, sizeof cc->id);

    /* The file name is a keyed hash, so it does not say which model it belongs to. */
    unsigned char name[16];
    crypto_generichash(name, sizeof name, cc->id, sizeof cc->id, namekey, sizeof namekey);
    sodium_memzero(namekey, sizeof namekey);
    char hex[2 * sizeof name + 1];
    sodium_bin2hex(hex, sizeof hex, name, sizeof name);
    if (snprintf(cc->path, sizeof cc->path, "%s/clusters-%s.bin", p->cache_dir, hex) >=
        (int)sizeof cc->path) {
        snprintf(note, notelen, "cache path too long");
        return -1;
    }
    return 0;
}

static int read_file_all(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return -1; }
    long sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return -1; }
    unsigned char *b = malloc((size_t)sz + 1);
    if (!b) { fclose(f); return -1; }
    if (fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); fclose(f); return -1; }
    fclose(f);
    *buf = b;
    *len = (size_t)sz;
    return 0;
}

/* Structural validation of a cluster assignment, then build members/start from it. */
static int adopt(struct cluster *c, const int32_t *of, const uint8_t *group, int k)
{
    int32_t nc = -1;
    for (int32_t i = 0; i < c->n_vocab; i++) {
        if ((of[i] < 0) != (group[i] == 0)) return -1;
        if (of[i] < -1 || of[i] > c->n_vocab) return -1;
        /* Cluster ids appear in order of their lowest member (the greedy seed order). */
        if (of[i] > nc + 1) return -1;
        if (of[i] > nc) nc = of[i];
    }
    nc++;
    int32_t *count = calloc((size_t)nc + 1, sizeof *count);
    int32_t *gr = malloc(((size_t)nc + 1) * sizeof *gr);
    c->start = malloc(((size_t)nc + 1) * sizeof *c->start);
    if (!count || !gr || !c->start) { free(count); free(gr); return -1; }
    c->cap_clusters = nc + 1;
    for (int32_t i = 0; i < nc; i++) gr[i] = -1;
    for (int32_t i = 0; i < c->n_vocab; i++) {
        if (of[i] < 0) continue;
        if (gr[of[i]] >= 0 && gr[of[i]] != group[i]) { free(count); free(gr); return -1; }
        gr[of[i]] = group[i];
        count[of[i]]++;
    }
    int32_t off = 0;
    for (int32_t i = 0; i < nc; i++) {
        if (count[i] < 1 || count[i] > k + 1) { free(count); free(gr); return -1; }
        c->start[i] = off;
        off += count[i];
        count[i] = 0;
    }
    c->start[nc] = off;
    for (int32_t i = 0; i < c->n_vocab; i++)
        if (of[i] >= 0) c->members[c->start[of[i]] + count[of[i]]++] = i;
    c->n_clusters = nc;
    c->n_members = off;
    free(count);
    free(gr);
    return 0;
}

static int cache_load(struct cluster *c, const struct cache_ctx *cc, const uint8_t *group, int k)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_file_all(cc->path, &buf, &len)) return -1;
    size_t plen = 8 + 32 + 4 * (size_t)c->n_vocab;
    int rc = -1;
    unsigned char *plain = malloc(plen);
    if (plain && len == 8 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plen &&
        memcmp(buf, CACHE_MAGIC, 8) == 0 &&
        crypto_secretbox_open_easy(plain, buf + 8 + crypto_secretbox_NONCEBYTES,
                                   len - 8 - crypto_secretbox_NONCEBYTES, buf + 8,
                                   cc->seal) == 0 &&
        memcmp(plain, PAYLOAD_MAGIC, 8) == 0 && sodium_memcmp(plain + 8, cc->id, 32) == 0) {
        int32_t *of = malloc((size_t)c->n_vocab * sizeof *of);
        if (of) {
            for (int32_t i = 0; i < c->n_vocab; i++) {
                const unsigned char *q = plain + 40 + 4 * (size_t)i;
                of[i] = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                                  (uint32_t)q[3] << 24);
            }
            if (adopt(c, of, group, k) == 0) {
                memcpy(c->of, of, (size_t)c->n_vocab * sizeof *of);
                rc = 0;
            }
            free(of);
        }
    }
    free(plain);
    free(buf);
    return rc;
}

static int cache_store(const struct cluster *c, const struct cache_ctx *cc, const char *dir,
                       char *note, size_t notelen)
{
    size_t plen = 8 + 32 + 4 * (size_t)c->n_vocab;
    size_t flen = 8 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plen;
    unsigned char *plain = malloc(plen), *out = malloc(flen);
    int rc = -1;
    if (!plain || !out) goto done;
    memcpy(plain, PAYLOAD_MAGIC, 8);
    memcpy(plain + 8, cc->id, 32);
    for (int32_t i = 0; i < c->n_vocab; i++) {
        uint32_t v = (uint32_t)c->of[i];
        unsigned char *q = plain + 40 + 4 * (size_t)i;
        q[0] = (unsigned char)v; q[1] = (unsigned char)(v >> 8);
        q[2] = (unsigned char)(v >> 16); q[3] = (unsigned char)(v >> 24);
    }
    memcpy(out, CACHE_MAGIC, 8);
    randombytes_buf(out + 8, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out + 8 + crypto_secretbox_NONCEBYTES, plain, plen, out + 8, cc->seal);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.clusters-XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) { snprintf(note, notelen, "cannot write cache in %s: %s", dir, strerror(errno)); goto done; }
    int ok = fchmod(fd, 0600) == 0 && write(fd, out, flen) == (ssize_t)flen && fsync(fd) == 0;
    if (close(fd) != 0) ok = 0;
    if (!ok || rename(tmp, cc->path) != 0) {
        unlink(tmp);
        snprintf(note, notelen, "cannot write cache %s", cc->path);
        goto done;
    }
    rc = 0;
done:
    free(plain);
    free(out);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Public */

int cluster_build(struct cluster **out, int32_t n_vocab, int dim, const uint8_t *group,
                  cluster_row_fn row, void *ctx, const struct cluster_params *p, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (n_vocab <= 0 || dim <= 0) {
        snprintf(err, errlen, "cluster: bad shape (vocabulary %d, dim %d)", (int)n_vocab, dim);
        return -1;
    }
    if (!p || p->k < 2 || p->k > 100000) {
        snprintf(err, errlen, "cluster: cluster size must be between 2 and 100000 (got %d)",
                 p ? p->k : 0);
        return -1;
    }
    if (sodium_init() < 0) { snprintf(err, errlen, "cluster: libsodium init failed"); return -1; }
    struct cluster *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errlen, "cluster: out of memory"); return -1; }
    c->n_vocab = n_vocab;
    c->k = p->k;
    c->of = malloc((size_t)n_vocab * sizeof *c->of);
    c->members = malloc((size_t)n_vocab * sizeof *c->members);
    int32_t *ids = malloc((size_t)n_vocab * sizeof *ids);
    if (!c->of || !c->members || !ids) {
        snprintf(err, errlen, "cluster: out of memory");
        free(ids);
        cluster_close(c);
        return -1;
    }
    for (int32_t i = 0; i < n_vocab; i++) c->of[i] = -1;

    struct cache_ctx cc;
    int use_cache = p->cache_dir && *p->cache_dir && p->fingerprint;
    if (use_cache && cache_prepare(&cc, p, n_vocab, group, c->note, sizeof c->note)) use_cache = 0;
    if (use_cache) {
        if (cache_load(c, &cc, group, p->k) == 0) {
            c->from_cache = 1;
            sodium_memzero(&cc, sizeof cc);
            free(ids);
            *out = c;
            return 0;
        }
        /* Missing, tampered or stale: start over from a clean state. */
        free(c->start);
        c->start = NULL;
        c->cap_clusters = c->n_clusters = c->n_members = 0;
    }

    for (int g = 1; g < 256; g++) {
        int32_t n = 0;
        for (int32_t i = 0; i < n_vocab; i++)
            if (group[i] == g) ids[n++] = i;
        if (n == 0) continue;
        if (build_group(c, ids, n, dim, row, ctx, p->k, p->quiet, err, errlen)) {
            free(ids);
            sodium_memzero(&cc, sizeof cc);
            cluster_close(c);
            return -1;
        }
    }
    free(ids);
    for (int32_t cl = 0; cl < c->n_clusters; cl++)
        for (int32_t i = c->start[cl]; i < c->start[cl + 1]; i++) c->of[c->members[i]] = cl;
    if (use_cache) cache_store(c, &cc, p->cache_dir, c->note, sizeof c->note);
    sodium_memzero(&cc, sizeof cc);
    *out = c;
    return 0;
}

void cluster_close(struct cluster *c)
{
    if (!c) return;
    free(c->of);
    free(c->start);
    free(c->members);
    free(c);
}

int32_t cluster_count(const struct cluster *c) { return c->n_clusters; }
int cluster_k(const struct cluster *c) { return c->k; }
int32_t cluster_n_vocab(const struct cluster *c) { return c->n_vocab; }
int32_t cluster_of(const struct cluster *c, int32_t id)
{
    return id >= 0 && id < c->n_vocab ? c->of[id] : -1;
}
int cluster_members(const struct cluster *c, int32_t cid, const int32_t **members)
{
    if (cid < 0 || cid >= c->n_clusters) { *members = NULL; return 0; }
    *members = c->members + c->start[cid];
    return (int)(c->start[cid + 1] - c->start[cid]);
}
int cluster_from_cache(const struct cluster *c) { return c->from_cache; }
const char *cluster_cache_note(const struct cluster *c) { return c->note; }
