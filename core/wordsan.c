/* core/wordsan: the word-level sanitizer (see wordsan.h). */
#include "core/wordsan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/clrows.h"
#include "core/cluster.h"
#include "core/enclave.h"
#include "core/lexicon.h"
#include "core/mech.h"
#include "core/tokenizer.h"
#include "core/words.h"

static int is_public(void *ctx, const char *w, size_t n)
{
    return words_list_has(ctx, w, n);
}

/* Rows of lexicon entries as stored (for core/clrows): the entries' tokens' rows. */
static int entry_raw(void *ctx, const int32_t *ids, size_t n, uint8_t *out)
{
    struct wordsan *w = ctx;
    int32_t *tok = malloc((n ? n : 1) * sizeof *tok);
    if (!tok) return -1;
    for (size_t i = 0; i < n; i++) tok[i] = lexicon_token(w->lex, ids[i]);
    int rc = w->raw_rows(w->ctx, tok, n, out);
    free(tok);
    return rc;
}

static int cluster_rows(void *ctx, int32_t cid, float *out)
{
    char e[8];
    return clrows_get(ctx, cid, out, NULL, e, sizeof e);
}

int wordsan_open(struct wordsan *w, const struct wordsan_params *p, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    uint8_t *role = NULL, *stop = NULL, *group = NULL;
    int rc = -1;
    if (lexicon_build(&w->lex, p->tok, is_public, (void *)p->pl, err, errlen) != 0) goto out;
    lexicon_set_rows(w->lex, p->rows, p->ctx, p->dim);
    lexicon_set_public_rows(w->lex, p->pub_rows);
    int32_t n = lexicon_size(w->lex);
    role = calloc((size_t)n, 1);
    stop = calloc((size_t)n, 1);
    group = malloc((size_t)n);
    if (!role || !stop || !group) {
        snprintf(err, errlen, "core: out of memory for the word sanitizer");
        goto out;
    }
    /* A group too small to form a cluster joins the other one: a cluster of one protects
     * nothing. */
    const uint8_t *g = lexicon_groups(w->lex);
    int32_t n1 = 0;
    for (int32_t i = 0; i < n; i++) n1 += g[i] == 1;
    int merge = n1 < p->k || n - n1 < p->k;
    for (int32_t i = 0; i < n; i++) {
        group[i] = merge ? 1 : g[i];
        size_t len;
        const char *s = lexicon_word(w->lex, i, &len);
        stop[i] = (uint8_t)mech_is_stopword(s, len);
        role[i] = MECH_ROLE_SANITIZE;
    }
    /* The word partition is cached under its own name: the table's fingerprint with a
     * domain tag and the public list it was grouped by. */
    unsigned char fp[32];
    if (p->fingerprint) {
        crypto_generichash_state hs;
        crypto_generichash_init(&hs, NULL, 0, sizeof fp);
        crypto_generichash_update(&hs, p->fingerprint, 32);
        crypto_generichash_update(&hs, (const unsigned char *)"cmif-words-v1", 13);
        crypto_generichash_update(&hs, group, (size_t)n);
        crypto_generichash_final(&hs, fp, sizeof fp);
    }
    struct cluster_params cp = {.k = p->k, .quiet = p->quiet, .log = p->log,
                                .log_ctx = p->log_ctx, .cache_dir = p->cache_dir,
                                .fingerprint = p->fingerprint ? fp : NULL,
                                .rows = lexicon_rows_public, .centroids = 1};
    if (cluster_build(&w->cl, n, p->dim, group, lexicon_row, w->lex, &cp, err, errlen) != 0)
        goto out;
    /* With the cluster-row store, the table is walked once, to fill it, and the centroids
     * are taken from it a cluster at a time. */
    if (p->raw_rows) {
        w->raw_rows = p->raw_rows;
        w->ctx = p->ctx;
        struct clrows_source src = {.type = p->row_type, .row_bytes = p->row_bytes,
                                    .dim = p->dim, .raw = entry_raw, .ctx = w};
        /* Kept in the cache folder beside the partition, named by the partition's own
         * fingerprint: a warm start reads no row of the table. */
        struct clrows_params rp = {.swap_dir = p->swap_dir, .cache_dir = p->cache_dir,
                                   .fingerprint = p->fingerprint ? fp : NULL,
                                   .quiet = p->quiet, .log = p->log, .log_ctx = p->log_ctx};
        if (clrows_open(&w->crows, w->cl, &src, &rp, err, errlen) != 0 ||
            lexicon_centroids_from(w->lex, w->cl, cluster_rows, w->crows, err, errlen) != 0)
            goto out;
    } else if (lexicon_centroids(w->lex, w->cl, err, errlen) != 0) {
        goto out;
    }
    struct mech_config mc = {.n_vocab = n, .dim = p->dim, .row = lexicon_row,
                             .rows = lexicon_rows, .ctx = w->lex, .clusters = w->cl,
                             .crows = w->crows,
                             .role = role, .stopword = stop, .noise = p->noise};
    if (mech_open(&w->mc, &mc, p->mech, p->eps, err, errlen) != 0) goto out;
    char e[160];
    w->x = enclave_scratch_alloc((size_t)p->dim * sizeof(float), e, sizeof e);
    w->wcap = LEXICON_MAX_WORD + 2;
    w->wbuf = w->x ? enclave_scratch_alloc(w->wcap, e, sizeof e) : NULL;
    if (!w->wbuf) {
        snprintf(err, errlen, "core: cannot allocate guarded scratch: %s", e);
        goto out;
    }
    w->tok = p->tok;
    w->pl = p->pl;
    w->dim = p->dim;
    w->rows = p->rows;
    w->ctx = p->ctx;
    rc = 0;
out:
    free(role);
    free(stop);
    free(group);
    if (rc != 0) wordsan_close(w);
    return rc;
}

void wordsan_close(struct wordsan *w)
{
    mech_close(w->mc);
    clrows_close(w->crows);
    cluster_close(w->cl);
    lexicon_close(w->lex);
    enclave_scratch_free(w->x);
    enclave_scratch_free(w->prow);
    enclave_scratch_free(w->wbuf);
    memset(w, 0, sizeof *w);
}

void wordsan_where(const struct wordsan *w, struct enclave_where *ew)
{
    enclave_scratch_where(w->x, ew);
    enclave_scratch_where(w->prow, ew);
    enclave_scratch_where(w->wbuf, ew);
    clrows_where(w->crows, ew);
}

/* ASCII lower case of word into out (cap bytes); the length, or 0 when it does not fit. */
static size_t fold(const char *word, size_t n, char *out, size_t cap)
{
    if (n + 1 > cap) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)word[i];
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
    }
    out[n] = 0;
    return n;
}

int wordsan_charges(const struct wordsan *w, const char *low, size_t n)
{
    int32_t i = lexicon_find(w->lex, low, n);
    if (i < 0) return mech_kind(w->mc) != MECH_NONE &&
                      !(mech_kind(w->mc) == MECH_CUSTEXT && mech_is_stopword(low, n));
    return mech_charges(w->mc, i);
}

/* The cluster for a word outside the domain: its pieces' mean vector, nearest centroid of
 * its group (the other group when its own has none). w->wbuf holds " " + the folded word. */
static int32_t outside_cluster(struct wordsan *w, size_t n, int32_t *ids, char *err,
                               size_t errlen)
{
    size_t nid = 0;
    const char *low = w->wbuf + 1;
    /* " " + word, as the word appears inside a sentence: the pieces a whole-word token would
     * have been. */
    if (tok_encode(w->tok, w->wbuf, n + 1, 0, 0, ids, n + 4, &nid, err, errlen) != 0) return -1;
    if (nid > w->prow_cap) {
        char e[160];
        enclave_scratch_free(w->prow);
        w->prow = enclave_scratch_alloc(nid * (size_t)w->dim * sizeof(float), e, sizeof e);
        w->prow_cap = w->prow ? nid : 0;
        if (!w->prow) {
            snprintf(err, errlen, "core: out of guarded memory: %s", e);
            return -1;
        }
    }
    if (w->rows(w->ctx, ids, nid, w->prow) != 0) {
        snprintf(err, errlen, "core: cannot read the embedding rows of a word");
        return -1;
    }
    lexicon_mean(w->prow, nid, w->dim, w->x);
    sodium_memzero(w->prow, nid * (size_t)w->dim * sizeof(float));
    sodium_memzero(ids, nid * sizeof *ids);
    int g = words_list_has(w->pl, low, n) ? 1 : 2;
    int32_t cid = lexicon_nearest(w->lex, w->x, g);
    if (cid < 0) cid = lexicon_nearest(w->lex, w->x, 3 - g);
    if (cid < 0) snprintf(err, errlen, "core: the word domain has no cluster");
    return cid;
}

int wordsan_word(struct wordsan *w, const char *word, size_t n, int32_t *ids, char *out,
                 size_t cap, int *kind, int *cluster_size, char *err, size_t errlen)
{
    if (n + 2 > w->wcap) {
        char e[160];
        char *b = enclave_scratch_alloc(n + 2, e, sizeof e);
        if (!b) {
            snprintf(err, errlen, "core: out of guarded memory: %s", e);
            return -1;
        }
        enclave_scratch_free(w->wbuf);
        w->wbuf = b;
        w->wcap = n + 2;
    }
    char *lowp = w->wbuf + 1;
    w->wbuf[0] = ' ';
    fold(word, n, lowp, n + 1);
    struct mech_out o;
    int rc = -1;
    int32_t i = lexicon_find(w->lex, lowp, n);
    if (i >= 0 && cluster_of(w->cl, i) >= 0) {
        rc = mech_sanitize(w->mc, i, &o, err, errlen);
    } else {
        int32_t cid = outside_cluster(w, n, ids, err, errlen);
        if (cid >= 0) rc = mech_sanitize_vec(w->mc, cid, w->x, &o, err, errlen);
        sodium_memzero(w->x, (size_t)w->dim * sizeof(float));
    }
    if (rc == 0) {
        size_t sl;
        const char *s = lexicon_word(w->lex, o.sent, &sl);
        if (sl + 1 > cap) sl = cap - 1;
        words_apply_case(out, s, sl, words_case_of(word, n));
        out[sl] = 0;
        *kind = o.sent == i ? 0 : 1;
        *cluster_size = o.cluster_size;
    }
    sodium_memzero(w->wbuf, n + 2);
    return rc;
}
