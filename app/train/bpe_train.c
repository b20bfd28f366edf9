/* app/train/bpe_train: byte-fallback BPE training (see bpe_train.h). */
#include "ui/utf8.h"
#include "app/train/bpe_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/train/gguf_out.h"
#include "core/gguf.h"

const char bpe_chatml_template[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

static const char *const specials[] = { "<|im_start|>", "<|im_end|>" };
#define SPACE "\xe2\x96\x81"     /* ▁ U+2581, SentencePiece's space */

/* --- distinct words with counts (open addressing) ------------------------------------ */
struct word { char *s; size_t len; uint64_t count; int *sym; int nsym; };
struct wtab { struct word *w; size_t n, cap; int oom; };

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int wtab_grow(struct wtab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 4096;
    struct word *nw = calloc(cap, sizeof *nw);
    if (!nw) return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->w[i].s) continue;
        size_t j = fnv(t->w[i].s, t->w[i].len) & (cap - 1);
        while (nw[j].s) j = (j + 1) & (cap - 1);
        nw[j] = t->w[i];
    }
    free(t->w);
    t->w = nw;
    t->cap = cap;
    return 0;
}

static void wtab_add(struct wtab *t, const char *s, size_t n)
{
    if (t->oom || n == 0) return;
    if (2 * (t->n + 1) > t->cap && wtab_grow(t)) { t->oom = 1; return; }
    size_t j = fnv(s, n) & (t->cap - 1);
    while (t->w[j].s) {
        if (t->w[j].len == n && memcmp(t->w[j].s, s, n) == 0) { t->w[j].count++; return; }
        j = (j + 1) & (t->cap - 1);
    }
    char *c = malloc(n);
    if (!c) { t->oom = 1; return; }
    memcpy(c, s, n);
    t->w[j] = (struct word){ c, n, 1, NULL, 0 };
    t->n++;
}

/* Splits one special-free segment into words: a word is an optional ▁ (for a space)
 * followed by characters other than space and newline. */
static void add_segment(struct wtab *t, const char *s, size_t n, char *tmp)
{
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        if (s[i] == ' ') { memcpy(tmp, SPACE, 3); k = 3; i++; }
        else if (s[i] == '\n') { i++; continue; }
        while (i < n && s[i] != ' ' && s[i] != '\n') tmp[k++] = s[i++];
        wtab_add(t, tmp, k);
    }
}

/* Bytes of the character at s (a malformed byte stands alone). */
static size_t char_len(const char *s, size_t n)
{
    uint32_t cp;
    size_t l = utf8_decode(s, n, &cp);
    return l ? l : 1;
}

/* --- symbols ------------------------------------------------------------------------- */
struct syms { char **s; int n, cap; };

static int sym_find(const struct syms *y, const char *s, size_t n)
{
    for (int i = 0; i < y->n; i++)
        if (strlen(y->s[i]) == n && memcmp(y->s[i], s, n) == 0) return i;
    return -1;
}

static int sym_add(struct syms *y, const char *s, size_t n)
{
    if (y->n == y->cap) return -1;
    char *c = malloc(n + 1);
    if (!c) return -1;
    memcpy(c, s, n);
    c[n] = 0;
    y->s[y->n] = c;
    return y->n++;
}

struct ccount { char c[5]; uint64_t count; };
static int cmp_ccount(const void *a, const void *b)
{
    const struct ccount *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->c, y->c);
}

void bpe_vocab_free(struct bpe_vocab *v)
{
    if (!v) return;
    for (int i = 0; i < v->n; i++) free(v->pieces[i]);
    free(v->pieces);
    free(v->scores);
    free(v->types);
    free(v);
}

int bpe_train(const char *text, size_t len, int vocab_size, struct bpe_vocab **out,
              char *err, size_t errlen)
{
    *out = NULL;
    if (vocab_size < BPE_MIN_VOCAB || vocab_size > BPE_MAX_VOCAB) {
        snprintf(err, errlen, "vocabulary size %d out of range [%d, %d]", vocab_size,
                 BPE_MIN_VOCAB, BPE_MAX_VOCAB);
        return -1;
    }
    int rc = -1;
    struct wtab wt = {0};
    struct syms y = {0};
    uint64_t *pairs = NULL;
    size_t *touched = NULL;
    struct ccount *cc = NULL;
    struct bpe_vocab *v = NULL;
    char *tmp = malloc(len + 4);
    if (!tmp) goto oom;

    /* 1. words, split at special token texts */
    size_t i = 0, seg = 0;
    while (i <= len) {
        size_t sl = 0;
        if (i < len)
            for (size_t k = 0; k < 2; k++) {
                size_t n = strlen(specials[k]);
                if (len - i >= n && memcmp(text + i, specials[k], n) == 0) sl = n;
            }
        if (i == len || sl) {
            add_segment(&wt, text + seg, i - seg, tmp);
            if (i == len) break;
            i += sl;
            seg = i;
        } else {
            i++;
        }
    }
    if (wt.oom) goto oom;

    /* 2. characters by frequency; the most frequent become base symbols */
    int budget = vocab_size - BPE_BYTE0 - 256;
    size_t ncc = 0, capcc = 256;
    cc = malloc(capcc * sizeof *cc);
    if (!cc) goto oom;
    for (size_t w = 0; w < wt.cap; w++) {
        struct word *wd = &wt.w[w];
        if (!wd->s) continue;
        for (size_t p = 0; p < wd->len;) {
            size_t n = char_len(wd->s + p, wd->len - p);
            if (p + n > wd->len) n = 1;
            size_t k = 0;
            while (k < ncc && !(strlen(cc[k].c) == n && memcmp(cc[k].c, wd->s + p, n) == 0)) k++;
            if (k == ncc) {
                if (ncc == capcc) {
                    struct ccount *nc = realloc(cc, 2 * capcc * sizeof *nc);
                    if (!nc) goto oom;
                    cc = nc;
                    capcc *= 2;
                }
                memset(&cc[k], 0, sizeof cc[k]);
                memcpy(cc[k].c, wd->s + p, n);
                ncc++;
            }
            cc[k].count += wd->count;
            p += n;
        }
    }
    qsort(cc, ncc, sizeof *cc, cmp_ccount);
    y.cap = budget;
    y.s = calloc((size_t)budget, sizeof *y.s);
    if (!y.s) goto oom;
    /* At most half the budget goes to characters; rare ones are left to byte fallback. */
    for (size_t k = 0; k < ncc && y.n < budget / 2 && cc[k].count >= 2; k++) {
        if (cc[k].c[0] == 0 || (strlen(cc[k].c) == 1 && (unsigned char)cc[k].c[0] >= 0x80))
            continue;    /* NUL or a stray byte of invalid UTF-8: byte fallback */
        if (sym_add(&y, cc[k].c, strlen(cc[k].c)) < 0) goto oom;
    }
    int n_chars = y.n;

    /* 3. each word as a symbol sequence (characters outside the set: -1, never merged) */
    for (size_t w = 0; w < wt.cap; w++) {
        struct word *wd = &wt.w[w];
        if (!wd->s) continue;
        wd->sym = malloc(wd->len * sizeof *wd->sym);
        if (!wd->sym) goto oom;
        for (size_t p = 0; p < wd->len;) {
            size_t n = char_len(wd->s + p, wd->len - p);
            if (p + n > wd->len) n = 1;
            wd->sym[wd->nsym++] = sym_find(&y, wd->s + p, n);
            p += n;
        }
    }

    /* 4. merges: the most frequent adjacent pair (ties: lowest ids) until the budget.
     * Pair counts live in a budget x budget table; only the entries a round touched are
     * scanned and cleared, so a round costs the corpus's symbol count, not budget^2. */
    size_t np = (size_t)budget * (size_t)budget, nsyms = 0;
    for (size_t w = 0; w < wt.cap; w++) nsyms += wt.w[w].s ? (size_t)wt.w[w].nsym : 0;
    pairs = calloc(np, sizeof *pairs);
    touched = malloc((nsyms + 1) * sizeof *touched);
    if (!pairs || !touched) goto oom;
    int n_merges = 0;
    char buf[256];
    while (y.n < budget) {
        size_t nt = 0;
        for (size_t w = 0; w < wt.cap; w++) {
            struct word *wd = &wt.w[w];
            for (int p = 0; wd->s && p + 1 < wd->nsym; p++)
                if (wd->sym[p] >= 0 && wd->sym[p + 1] >= 0) {
                    size_t k = (size_t)wd->sym[p] * budget + wd->sym[p + 1];
                    if (pairs[k] == 0) touched[nt++] = k;
                    pairs[k] += wd->count;
                }
        }
        size_t best = 0;
        uint64_t bc = 0;
        for (size_t i = 0; i < nt; i++) {
            size_t k = touched[i];
            if (pairs[k] > bc || (pairs[k] == bc && k < best)) { bc = pairs[k]; best = k; }
        }
        for (size_t i = 0; i < nt; i++) pairs[touched[i]] = 0;
        if (bc < 2) break;
        int a = (int)(best / budget), b = (int)(best % budget);
        size_t la = strlen(y.s[a]), lb = strlen(y.s[b]);
        if (la + lb >= sizeof buf) break;
        memcpy(buf, y.s[a], la);
        memcpy(buf + la, y.s[b], lb);
        int m = sym_find(&y, buf, la + lb);
        if (m < 0) {
            m = sym_add(&y, buf, la + lb);
            if (m < 0) goto oom;
            n_merges++;
        }
        for (size_t w = 0; w < wt.cap; w++) {
            struct word *wd = &wt.w[w];
            int o = 0;
            for (int p = 0; wd->s && p < wd->nsym; p++) {
                if (p + 1 < wd->nsym && wd->sym[p] == a && wd->sym[p + 1] == b) {
                    wd->sym[o++] = m;
                    p++;
                } else {
                    wd->sym[o++] = wd->sym[p];
                }
            }
            if (wd->s) wd->nsym = o;
        }
    }

    /* 5. the vocabulary */
    v = calloc(1, sizeof *v);
    if (!v) goto oom;
    int n = BPE_BYTE0 + 256 + y.n;
    v->pieces = calloc((size_t)n, sizeof *v->pieces);
    v->scores = calloc((size_t)n, sizeof *v->scores);
    v->types = calloc((size_t)n, sizeof *v->types);
    if (!v->pieces || !v->scores || !v->types) goto oom;
    static const char *const fixed[] = { "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>" };
    for (int k = 0; k < n; k++) {
        char b8[8];
        const char *s;
        if (k < BPE_BYTE0) {
            s = fixed[k];
            v->types[k] = k == BPE_UNK ? GGUF_TOKEN_UNKNOWN : GGUF_TOKEN_CONTROL;
        } else if (k < BPE_BYTE0 + 256) {
            snprintf(b8, sizeof b8, "<0x%02X>", k - BPE_BYTE0);
            s = b8;
            v->types[k] = GGUF_TOKEN_BYTE;
        } else {
            int j = k - BPE_BYTE0 - 256;
            s = y.s[j];
            v->types[k] = GGUF_TOKEN_NORMAL;
            /* merges rank above characters; earlier merges above later ones */
            v->scores[k] = j < n_chars ? -1e6f - (float)j : -(float)(j - n_chars);
        }
        v->pieces[k] = strdup(s);
        if (!v->pieces[k]) goto oom;
        v->n = k + 1;
    }
    v->n_chars = n_chars;
    v->n_merges = n_merges;
    *out = v;
    v = NULL;
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "bpe: out of memory");
done:
    bpe_vocab_free(v);
    for (size_t w = 0; w < wt.cap; w++) {
        free(wt.w[w].s);
        free(wt.w[w].sym);
    }
    free(wt.w);
    for (int k = 0; k < y.n; k++) free(y.s[k]);
    free(y.s);
    free(pairs);
    free(touched);
    free(cc);
    free(tmp);
    return rc;
}

void bpe_vocab_to_gguf(const struct bpe_vocab *v, struct gguf_out *w)
{
    gguf_out_str(w, "tokenizer.ggml.model", "llama");
    gguf_out_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->pieces, (size_t)v->n);
    gguf_out_arr_f32(w, "tokenizer.ggml.scores", v->scores, (size_t)v->n);
    gguf_out_arr_i32(w, "tokenizer.ggml.token_type", v->types, (size_t)v->n);
    gguf_out_u32(w, "tokenizer.ggml.bos_token_id", BPE_BOS);
    gguf_out_u32(w, "tokenizer.ggml.eos_token_id", BPE_EOS);
    gguf_out_u32(w, "tokenizer.ggml.unknown_token_id", BPE_UNK);
    gguf_out_u32(w, "tokenizer.ggml.eot_token_id", BPE_IM_END);
    gguf_out_bool(w, "tokenizer.ggml.add_bos_token", 1);
    gguf_out_bool(w, "tokenizer.ggml.add_eos_token", 0);
    gguf_out_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    gguf_out_str(w, "tokenizer.chat_template", bpe_chatml_template);
}
