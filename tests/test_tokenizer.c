/* Tests of core/tokenizer: llama.cpp's SentencePiece test vectors, BPE vocabularies built
 * here with the GGUF writer (pre-tokenizer splits, merge order, special tokens), decoding,
 * malformed vocabularies and random-input robustness (run under ASan by make check-asan). */
#include "tests/testutil.h"

#include "core/gguf.h"
#include "core/tokenizer.h"
#include "app/train/gguf_out.h"
#include "tests/tools/gpt2bytes.h"
#include "tests/tools/testrng.h"

/* ---- helpers --------------------------------------------------------------------------- */

/* Concatenated pieces of ids (special tokens hidden). */
static char *detok(const struct tokenizer *t, const int32_t *ids, size_t n, size_t *len)
{
    size_t cap = 64, at = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        char tmp[256];
        size_t k = tok_piece(t, ids[i], 0, tmp, sizeof tmp);
        assert_true(k < sizeof tmp);
        if (at + k + 1 > cap) {
            while (at + k + 1 > cap) cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        memcpy(out + at, tmp, k);
        at += k;
    }
    out[at] = 0;
    *len = at;
    return out;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { return testrng_next(&rng_state); }

/* Raw bytes → GPT-2 token text (static buffer, valid until the next call). */
static const char *gmap(const char *raw, size_t n)
{
    static char buf[4][512];
    static int k;
    char *o = buf[k = (k + 1) & 3];
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(at + 3 < sizeof buf[0]);
        at += gpt2bytes_map((uint8_t)raw[i], o + at);
    }
    o[at] = 0;
    return o;
}

/* A string list that grows (token texts, merges). */
struct slist {
    char **v;
    size_t n, cap;
};

static int slist_find(const struct slist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return (int)i;
    return -1;
}

static int slist_add(struct slist *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        assert_non_null(l->v);
    }
    l->v[l->n] = strdup(s);
    assert_non_null(l->v[l->n]);
    return (int)l->n++;
}

static void slist_free(struct slist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

/* A byte-level BPE vocabulary: the 256 byte characters, then whatever the test adds. */
struct bpe_vocab {
    struct slist tok, merges;
    int32_t *types;
    size_t types_cap;
};

static int bv_token(struct bpe_vocab *v, const char *text, int type)
{
    int i = slist_find(&v->tok, text);
    if (i >= 0) return i;
    i = slist_add(&v->tok, text);
    if ((size_t)i >= v->types_cap) {
        v->types_cap = v->types_cap ? 2 * v->types_cap : 512;
        v->types = realloc(v->types, v->types_cap * sizeof *v->types);
        assert_non_null(v->types);
    }
    v->types[i] = type;
    return i;
}

static void bv_init(struct bpe_vocab *v)
{
    memset(v, 0, sizeof *v);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        slist_add(&v->tok, gmap(&c, 1));
    }
    v->types_cap = 512;
    v->types = malloc(v->types_cap * sizeof *v->types);
    assert_non_null(v->types);
    for (int b = 0; b < 256; b++) v->types[b] = TOK_T_NORMAL;
}

/* Merge "left right" (raw bytes) → adds the merged token. */
static void bv_merge(struct bpe_vocab *v, const char *l, const char *r)
{
    char m[600], j[300];
    snprintf(m, sizeof m, "%s %s", gmap(l, strlen(l)), gmap(r, strlen(r)));
    slist_add(&v->merges, m);
    snprintf(j, sizeof j, "%s%s", l, r);
    bv_token(v, gmap(j, strlen(j)), TOK_T_NORMAL);
}

/* Every substring of w (raw bytes) becomes a token, and every split of a substring into two
 * a merge. Whatever order the merges apply in, a pre-tokenized word equal to w then ends as
 * the single token w, and nothing merges across pre-tokenizer boundaries: so the ids show
 * exactly where the pre-tokenizer split. */
static void bv_word(struct bpe_vocab *v, const char *w)
{
    size_t n = strlen(w);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 2; j <= n; j++) {
            for (size_t k = i + 1; k < j; k++) {
                char m[600], l[256];
                snprintf(l, sizeof l, "%s", gmap(w + i, k - i));
                snprintf(m, sizeof m, "%s %s", l, gmap(w + k, j - k));
                slist_add(&v->merges, m);
            }
            bv_token(v, gmap(w + i, j - i), TOK_T_NORMAL);
        }
}

/* Writes w (and frees it) to dir/name.gguf and opens a tokenizer on it; fails the test on
 * any error. */
static struct tokenizer *gw_open_tok(struct gguf_out *w, const char *dir, const char *name,
                                     struct gguf **gout)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    if (gguf_out_write(w, path, err, sizeof err) != 0) fail_msg("gguf_out_write: %s", err);
    gguf_out_free(w);
    struct gguf *g = NULL;
    if (gguf_open(&g, path, err, sizeof err) != 0) fail_msg("gguf_open: %s", err);
    struct tokenizer *t = NULL;
    if (tok_open(&t, g, err, sizeof err) != 0) fail_msg("tok_open: %s", err);
    *gout = g;
    return t;
}

/* A writer holding a SentencePiece ("llama") vocabulary of n tokens. */
static struct gguf_out *spm_writer(const char *const *toks, const float *scores,
                                   const int32_t *types, size_t n)
{
    struct gguf_out *w = gguf_out_new();
    assert_non_null(w);
    gguf_out_str(w, "general.architecture", "llama");
    gguf_out_str(w, "tokenizer.ggml.model", "llama");
    gguf_out_arr_str(w, "tokenizer.ggml.tokens", toks, n);
    gguf_out_arr_f32(w, "tokenizer.ggml.scores", scores, n);
    gguf_out_arr_i32(w, "tokenizer.ggml.token_type", types, n);
    return w;
}

/* Writes the vocabulary to dir/name.gguf and opens a tokenizer on it. */
static struct tokenizer *bv_open(struct bpe_vocab *v, const char *dir, const char *pre,
                                 int32_t bos, int32_t eos, struct gguf **gout)
{
    struct gguf_out *w = gguf_out_new();
    assert_non_null(w);
    gguf_out_str(w, "general.architecture", "llama");
    gguf_out_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre) gguf_out_str(w, "tokenizer.ggml.pre", pre);
    gguf_out_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok.v, v->tok.n);
    gguf_out_arr_i32(w, "tokenizer.ggml.token_type", v->types, v->tok.n);
    gguf_out_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges.v, v->merges.n);
    if (bos >= 0) gguf_out_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0) gguf_out_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    char name[64];
    snprintf(name, sizeof name, "vocab-%s", pre ? pre : "none");
    return gw_open_tok(w, dir, name, gout);
}

static void bv_free(struct bpe_vocab *v)
{
    slist_free(&v->tok);
    slist_free(&v->merges);
    free(v->types);
}

/* Closes what bv_open opened and frees the vocabulary. */
static void bv_close(struct tokenizer *t, struct gguf *g, struct bpe_vocab *v)
{
    tok_close(t);
    gguf_close(g);
    bv_free(v);
}

static size_t enc(const struct tokenizer *t, const char *s, size_t len, int bos, int special,
                  int32_t *ids, size_t max)
{
    char err[256] = "";
    size_t n = 0;
    if (tok_encode(t, s, len, bos, special, ids, max, &n, err, sizeof err) != 0)
        fail_msg("tok_encode: %s", err);
    return n;
}

/* Encode s and compare with the ids of the given token texts (raw bytes, GPT-2-mapped
 * here), listed NULL-terminated. */
static void expect_words(const struct tokenizer *t, const char *s, ...)
{
    int32_t want[64], got[256];
    size_t nw = 0;
    va_list ap;
    va_start(ap, s);
    for (const char *w; (w = va_arg(ap, const char *));) {
        const char *m = gmap(w, strlen(w));
        int32_t id = tok_find(t, m, strlen(m));
        if (id < 0) fail_msg("test vocabulary lacks '%s'", w);
        assert_true(nw < 64);
        want[nw++] = id;
    }
    va_end(ap);
    size_t n = enc(t, s, strlen(s), 0, 0, got, 256);
    int same = n == nw;
    for (size_t i = 0; same && i < n; i++) same = got[i] == want[i];
    if (!same) {
        print_message("input '%s': got", s);
        for (size_t i = 0; i < n; i++) {
            size_t tl;
            const char *tx = tok_text(t, got[i], &tl);
            print_message(" %d(%.*s)", got[i], (int)tl, tx);
        }
        print_message("\n  want");
        for (size_t i = 0; i < nw; i++) print_message(" %d", want[i]);
        print_message("\n");
        fail();
    }
}

/* ---- Vocabularies from ../shared, opened once per group ---------------------------------- */

struct shared_vocab {
    const char *rel;        /* path under ../shared */
    struct gguf *g;
    struct tokenizer *t;
};

static int spm_setup(void **state)
{
    static struct shared_vocab s = {"models/ggml-vocab-llama-spm.gguf", NULL, NULL};
    *state = &s;
    return 0;
}

static int llama3_setup(void **state)
{
    static struct shared_vocab s = {"models/llama3-vocab.gguf", NULL, NULL};
    *state = &s;
    return 0;
}

/* The group's tokenizer (skips the test when the file is not in ../shared). */
static struct tokenizer *shared_open(void **state)
{
    struct shared_vocab *s = *state;
    if (s->t) return s->t;
    const char *path = tu_shared(s->rel);
    char err[256];
    if (gguf_open(&s->g, path, err, sizeof err) != 0) fail_msg("gguf_open: %s", err);
    if (tok_open(&s->t, s->g, err, sizeof err) != 0) fail_msg("tok_open: %s", err);
    return s->t;
}

static int shared_teardown(void **state)
{
    struct shared_vocab *s = *state;
    tok_close(s->t);
    gguf_close(s->g);
    s->t = NULL;
    s->g = NULL;
    return 0;
}

/* Compares t's ids with llama.cpp's for every input of a file pair in llama.cpp's
 * test-tokenizer-0 format: inputs are separated by "\n__ggml_vocab_test__\n" (so the
 * newline before a separator is not part of the input); each output line holds the ids for
 * one input, without BOS. Decoding must give each input back; strip_space drops the
 * leading space SentencePiece adds (llama.cpp's caller does). Returns the input count. */
static int check_vectors(const struct tokenizer *t, const char *inp_path, const char *out_path,
                         int strip_space, const char *what)
{
    size_t il, ol;
    char *inp = tu_read_all(inp_path, &il);
    char *out = tu_read_all(out_path, &ol);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sl = sizeof sep - 1;
    char *ip = inp, *op = out, *iend = inp + il, *oend = out + ol;
    int total = 0, pass = 0, rt_pass = 0;
    int32_t *ids = malloc((il + 8) * sizeof *ids);
    assert_non_null(ids);
    while (ip < iend) {
        char *e = memmem(ip, (size_t)(iend - ip), sep, sl);
        size_t n_in = e ? (size_t)(e - ip) : (size_t)(iend - ip);
        assert_true(op < oend);
        char *nl = memchr(op, '\n', (size_t)(oend - op));
        if (!nl) nl = oend;
        int32_t want[512];
        size_t nw = 0;
        for (char *p = op; p < nl;) {
            char *q;
            long v = strtol(p, &q, 10);
            if (q == p) break;
            assert_true(nw < 512);
            want[nw++] = (int32_t)v;
            p = q;
        }
        size_t n = enc(t, ip, n_in, 0, 0, ids, il + 8);
        int ok = n == nw;
        for (size_t i = 0; ok && i < n; i++) ok = ids[i] == want[i];
        total++;
        pass += ok;
        if (!ok) {
            print_message("vector %d '%.*s': got", total, (int)n_in, ip);
            for (size_t i = 0; i < n; i++) print_message(" %d", ids[i]);
            print_message("\n  llama.cpp:");
            for (size_t i = 0; i < nw; i++) print_message(" %d", want[i]);
            print_message("\n");
        }
        size_t dl;
        char *d = detok(t, ids, n, &dl);
        const char *dd = d;
        if (strip_space && dl && d[0] == ' ') {
            dd++;
            dl--;
        }
        if (dl == n_in && memcmp(dd, ip, n_in) == 0) rt_pass++;
        else print_message("vector %d does not round-trip: '%.*s'\n", total, (int)dl, dd);
        free(d);
        op = nl < oend ? nl + 1 : oend;
        ip = e ? e + sl : iend;
    }
    assert_true(op == oend); /* as many outputs as inputs */
    print_message("%s: %d/%d identical to llama.cpp, %d/%d round-trip\n", what, pass, total,
                  rt_pass, total);
    free(ids);
    free(inp);
    free(out);
    assert_int_equal(pass, total);
    assert_int_equal(rt_pass, total);
    return total;
}

/* ---- SentencePiece: llama.cpp's vectors ------------------------------------------------- */

static void test_spm_vectors(void **state)
{
    struct tokenizer *t = shared_open(state);
    char inp_path[4200], out_path[4200];
    snprintf(inp_path, sizeof inp_path, "%s", tu_shared("models/ggml-vocab-llama-spm.gguf.inp"));
    snprintf(out_path, sizeof out_path, "%s", tu_shared("models/ggml-vocab-llama-spm.gguf.out"));
    assert_true(check_vectors(t, inp_path, out_path, 1, "SPM vectors") >= 40);
}

static void test_spm_bos_special(void **state)
{
    struct tokenizer *t = shared_open(state);
    int32_t ids[64];
    assert_int_equal(tok_kind(t), TOK_SPM);
    assert_int_equal(tok_n_vocab(t), 32000);
    assert_int_equal(tok_bos(t), 1);
    assert_int_equal(tok_eos(t), 2);
    assert_true(tok_add_bos(t));
    size_t n = enc(t, "Hello world", 11, 1, 0, ids, 64);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 15043);
    assert_int_equal(ids[2], 3186);
    /* Empty text: BOS alone, or nothing. */
    assert_int_equal(enc(t, "", 0, 1, 0, ids, 64), 1);
    assert_int_equal(enc(t, "", 0, 0, 0, ids, 64), 0);
    /* Control token texts map to their ids only when parse_special; the following text gets
     * its leading ▁ again. */
    n = enc(t, "<s>Hello</s>", 12, 0, 1, ids, 64);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 15043);
    assert_int_equal(ids[2], 2);
    n = enc(t, "<s>Hello</s>", 12, 0, 0, ids, 64);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] != 1 && ids[i] != 2);
    /* Many occurrences of special tokens (partitioning stays linear). */
    {
        size_t reps = 20000, sl = reps * 7;
        char *big = malloc(sl + 1);
        int32_t *bid = malloc((sl + 3) * sizeof *bid);
        assert_non_null(big);
        assert_non_null(bid);
        for (size_t i = 0; i < reps; i++) memcpy(big + 7 * i, "<s>x</s", 7);
        big[sl] = 0;
        /* "<s>x</s<s>x</s...": every "<s>" is BOS, "x</s" stays text. */
        n = enc(t, big, sl, 0, 1, bid, sl + 3);
        size_t nb = 0;
        for (size_t i = 0; i < n; i++) nb += bid[i] == 1;
        assert_int_equal(nb, reps);
        assert_int_equal(bid[0], 1);
        free(big);
        free(bid);
    }
    /* Too small an output buffer is an error, not a truncation. */
    char err[128];
    size_t nn = 99;
    assert_int_equal(tok_encode(t, "Hello world", 11, 1, 0, ids, 2, &nn, err, sizeof err), -1);
    assert_int_equal(nn, 0);
    assert_non_null(strstr(err, "tokens"));
    /* Pieces. */
    char buf[32];
    assert_int_equal(tok_piece(t, 15043, 0, buf, sizeof buf), 6);
    assert_string_equal(buf, " Hello");
    assert_int_equal(tok_piece(t, 13, 0, buf, sizeof buf), 1);  /* <0x0A> */
    assert_int_equal(buf[0], '\n');
    assert_int_equal(tok_piece(t, 1, 0, buf, sizeof buf), 0);
    assert_int_equal(tok_piece(t, 1, 1, buf, sizeof buf), 3);
    assert_memory_equal(buf, "<s>", 3);
    assert_int_equal(tok_piece(t, 15043, 0, buf, 3), 6);  /* truncated, full length reported */
    assert_memory_equal(buf, " He", 3);
    assert_int_equal(tok_piece(t, -1, 1, buf, sizeof buf), 0);
    assert_int_equal(tok_piece(t, 32000, 1, buf, sizeof buf), 0);
    size_t tl;
    assert_memory_equal(tok_text(t, 15043, &tl), "\xE2\x96\x81Hello", 8);
    assert_int_equal(tl, 8);
    assert_int_equal(tok_type(t, 13), TOK_T_BYTE);
    assert_int_equal(tok_type(t, 1), TOK_T_CONTROL);
    assert_int_equal(tok_find(t, "<0x0A>", 6), 13);
    assert_int_equal(tok_find(t, "no such token", 13), -1);
    assert_true(tok_is_eog(t, 2));
    assert_false(tok_is_eog(t, 1));
    assert_false(tok_is_eog(t, 15043));
}

/* Bytes that are not UTF-8 go through byte fallback and decode back unchanged. */
static void test_spm_invalid_utf8(void **state)
{
    struct tokenizer *t = shared_open(state);
    static const char s[] = "a\xff\xfe b\xc3\xe2\x82 \xed\xa0\x80z\xf4\x90\x80\x80\xc0\xaf";
    int32_t ids[256];
    size_t n = enc(t, s, sizeof s - 1, 0, 0, ids, 256);
    size_t dl;
    char *d = detok(t, ids, n, &dl);
    assert_int_equal(dl, sizeof s);  /* plus the leading space */
    assert_memory_equal(d + 1, s, sizeof s - 1);
    free(d);
}

static void fill_random(char *s, size_t n, int utf8)
{
    static const char *const pool[] = {"a", "e", "Z", " ", "  ", "\n", "\t", "'s", "1", "23", ".",
                                       "!", "\xC3\xA9", "\xD0\x96", "\xE6\x97\xA5", "\xF0\x9F\x98\x80",
                                       "<s>", "</s>", "<|eot_id|>", "\r\n", "\xC2\xA0"};
    size_t at = 0;
    while (at < n) {
        if (!utf8) {
            s[at++] = (char)(rnd() & 0xFF);
            continue;
        }
        const char *p = pool[rnd() % (sizeof pool / sizeof pool[0])];
        size_t k = strlen(p);
        if (at + k > n) break;
        memcpy(s + at, p, k);
        at += k;
    }
    while (at < n) s[at++] = 'x';
}

/* Random text and random bytes encode without error and decode to themselves. (The text
 * pool leaves out U+2581, which SentencePiece decodes to a space by design.) */
static void fuzz_roundtrip(const struct tokenizer *t, int strip_space, int iters)
{
    char s[300];
    int32_t ids[1200];
    for (int it = 0; it < iters; it++) {
        size_t n = rnd() % sizeof s;
        fill_random(s, n, it & 1);
        for (int special = 0; special < 2; special++) {
            char err[256];
            size_t k = 0;
            int r = tok_encode(t, s, n, it & 2, special, ids, sizeof ids / sizeof ids[0], &k, err,
                               sizeof err);
            if (r != 0) fail_msg("iteration %d: %s", it, err);
            for (size_t i = 0; i < k; i++) assert_true(ids[i] >= 0 && ids[i] < tok_n_vocab(t));
            if (special) continue;
            for (size_t i = 0; i < k; i++) assert_true(tok_type(t, ids[i]) != TOK_T_CONTROL || (i == 0 && (it & 2)));
            size_t dl;
            char *d = detok(t, ids, k, &dl);
            const char *dd = d;
            if (strip_space && n > 0) {
                assert_true(dl > 0 && d[0] == ' ');
                dd++;
                dl--;
            }
            if (dl != n || memcmp(dd, s, n) != 0) fail_msg("iteration %d: round trip differs", it);
            free(d);
        }
    }
}

static void test_spm_fuzz(void **state)
{
    fuzz_roundtrip(shared_open(state), 1, 1500);
}

/* A 100 kB line (one long "word" and a spaced one) encodes and decodes back. */
static void long_line(const struct tokenizer *t, int strip_space)
{
    size_t n = 100000;
    char *s = malloc(n);
    int32_t *ids = malloc((n + 3) * sizeof *ids);
    assert_non_null(s);
    assert_non_null(ids);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) s[i] = pass ? "abc de fgh, 123 "[i % 16] : (char)('a' + i % 3);
        size_t k = enc(t, s, n, 0, 0, ids, n + 3);
        assert_true(k > 0 && k <= n + 1);
        size_t dl;
        char *d = detok(t, ids, k, &dl);
        assert_int_equal(dl, n + (strip_space ? 1 : 0));
        assert_memory_equal(d + (strip_space ? 1 : 0), s, n);
        free(d);
    }
    free(s);
    free(ids);
}

static void test_spm_long_line(void **state)
{
    long_line(shared_open(state), 1);
}

/* ---- byte-level BPE on generated vocabularies --------------------------------------------- */

static const char *const words[] = {
    "Hello", " world", "I", "'m", " here", "'s", "DON", "'T", "123", "456", "78", "a", " ",
    " b", "x", "   ", "\n\n", "b", "hi", "!!\n", " ?!", "h\xC3\xA9llo", " w\xC3\xB6rld",
    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", " \xD0\xBC\xD0\xB8\xD1\x80",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "3", ".", "14", "\t", "\tx", " 123", "45", "12",
    " \xCE\xB1\xCE\xB2", "\xD9\xA3", "\xE2\x80\x94", " 1", "2", "\r\n", " \n", "  ", " x",
    "Hello!", " 12", "Hello ", "\xC2\xB2", "a\xCC\x81", "\xCC\x81", "'re", "'ll", "'ve",
    "'d", "'t", "\xD9\xA3" "12", "34", "\xE2\x80\x94x", " 12345678", "'T", NULL,
};

static struct tokenizer *word_vocab(const char *dir, const char *pre, struct bpe_vocab *v,
                                    struct gguf **g)
{
    bv_init(v);
    for (int i = 0; words[i]; i++) bv_word(v, words[i]);
    int bot = bv_token(v, "<|begin_of_text|>", TOK_T_CONTROL);
    int eot = bv_token(v, "<|eot_id|>", TOK_T_CONTROL);
    bv_token(v, "<|end_of_text|>", TOK_T_CONTROL);
    bv_token(v, "<tool>", TOK_T_USER_DEFINED);
    return bv_open(v, dir, pre, bot, eot + 1, g);
}

/* word_vocab in a temporary directory of its own, closed with wv_close. */
struct wv {
    char *dir;
    struct bpe_vocab v;
    struct gguf *g;
    struct tokenizer *t;
};

static struct tokenizer *wv_open(struct wv *w, const char *pre)
{
    w->dir = tu_tmpdir();
    w->t = word_vocab(w->dir, pre, &w->v, &w->g);
    return w->t;
}

static void wv_close(struct wv *w)
{
    bv_close(w->t, w->g, &w->v);
    tu_rmtree(w->dir);
}

static void test_bpe_llama3_split(void **state)
{
    (void)state;
    struct wv w;
    struct tokenizer *t = wv_open(&w, "llama-bpe");
    assert_int_equal(tok_kind(t), TOK_BPE);
    assert_true(tok_add_bos(t));  /* Llama 3 default */
    expect_words(t, "Hello world", "Hello", " world", NULL);
    expect_words(t, "I'm here's", "I", "'m", " here", "'s", NULL);
    expect_words(t, "DON'T", "DON", "'T", NULL);                     /* (?i:...) */
    expect_words(t, "x're'll've'd't", "x", "'re", "'ll", "'ve", "'d", "'t", NULL);
    expect_words(t, "12345678", "123", "456", "78", NULL);           /* \p{N}{1,3} */
    expect_words(t, "a  b", "a", " ", " b", NULL);                   /* \s+(?!\S) */
    expect_words(t, "x   ", "x", "   ", NULL);                       /* \s+ at the end */
    expect_words(t, "a\n\nb", "a", "\n\n", "b", NULL);               /* \s*[\r\n]+ */
    expect_words(t, "a \nb", "a", " \n", "b", NULL);
    expect_words(t, "x\r\n", "x", "\r\n", NULL);
    expect_words(t, "hi!!\n", "hi", "!!\n", NULL);                   /* punctuation + newlines */
    expect_words(t, "x ?!", "x", " ?!", NULL);
    expect_words(t, "Hello!", "Hello", "!", NULL);
    expect_words(t, "h\xC3\xA9llo w\xC3\xB6rld", "h\xC3\xA9llo", " w\xC3\xB6rld", NULL);
    expect_words(t, "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80",
                 "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", " \xD0\xBC\xD0\xB8\xD1\x80", NULL);
    expect_words(t, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", NULL);
    expect_words(t, "x \xCE\xB1\xCE\xB2", "x", " \xCE\xB1\xCE\xB2", NULL);  /* Greek letters */
    expect_words(t, "\xD9\xA3" "1234", "\xD9\xA3" "12", "34", NULL); /* Arabic-Indic digit is \p{N} */
    expect_words(t, "3.14", "3", ".", "14", NULL);
    expect_words(t, "\t\tx", "\t", "\tx", NULL);
    expect_words(t, "x 123", "x", " ", "123", NULL);                 /* no space before digits */
    expect_words(t, "x\xE2\x80\x94x", "x", "\xE2\x80\x94x", NULL);   /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    expect_words(t, "\xC2\xB2" "a", "\xC2\xB2", "a", NULL);          /* superscript two is \p{N} */
    expect_words(t, "a\xCC\x81", "a", "\xCC\x81", NULL);             /* a combining mark is not \p{L} */
    wv_close(&w);
}

static void test_bpe_gpt2_split(void **state)
{
    (void)state;
    struct wv w;
    struct tokenizer *t = wv_open(&w, "gpt2");
    assert_false(tok_add_bos(t));  /* only Llama 3 defaults to BOS */
    expect_words(t, "Hello world", "Hello", " world", NULL);
    expect_words(t, "I'm here's", "I", "'m", " here", "'s", NULL);
    expect_words(t, "DON'T", "DON", "'", "T", NULL);                 /* case-sensitive */
    expect_words(t, "x 12345678", "x", " 12345678", NULL);           /* ' ?\p{N}+': no 3-digit groups */
    expect_words(t, "a  b", "a", " ", " b", NULL);
    expect_words(t, "a\n\nb", "a", "\n", "\n", "b", NULL);            /* no \s*[\r\n]+ */
    expect_words(t, "Hello!", "Hello", "!", NULL);
    expect_words(t, "x ?!", "x", " ?!", NULL);
    expect_words(t, "hi!!\n", "hi", "!!", "\n", NULL);               /* no [\r\n]* after punctuation */
    expect_words(t, "\t\tx", "\t", "\t", "x", NULL);                  /* no [^...]? before letters */
    expect_words(t, "x   ", "x", "   ", NULL);
    wv_close(&w);

    /* pre = smollm: every digit is its own word, the rest splits as GPT-2. */
    t = wv_open(&w, "smollm");
    expect_words(t, "x 12", "x", " ", "1", "2", NULL);
    wv_close(&w);
}

/* Merge order: lowest rank first, ties to the leftmost pair; Llama 3 emits a word that is a
 * token whole (ignore_merges). */
static void test_bpe_merge_order(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    for (int llama3 = 0; llama3 < 2; llama3++) {
        struct bpe_vocab v;
        bv_init(&v);
        bv_merge(&v, "3", "4");   /* rank 0 */
        bv_merge(&v, "1", "2");   /* rank 1 */
        bv_merge(&v, "12", "3");  /* rank 2 */
        bv_merge(&v, "a", "a");   /* rank 3 */
        bv_merge(&v, "b", "c");   /* rank 4 */
        bv_merge(&v, "c", "d");   /* rank 5 */
        bv_merge(&v, "bc", "d");  /* rank 6 */
        bv_token(&v, gmap("xyz", 3), TOK_T_NORMAL);  /* a token no merge reaches */
        struct gguf *g;
        struct tokenizer *t = bv_open(&v, dir, llama3 ? "llama-bpe" : "gpt2", -1, -1, &g);
        int32_t ids[32];
        int32_t i12 = tok_find(t, "12", 2), i34 = tok_find(t, "34", 2), i123 = tok_find(t, "123", 3);
        int32_t iaa = tok_find(t, "aa", 2), ibcd = tok_find(t, "bcd", 3), ixyz = tok_find(t, "xyz", 3);
        size_t n = enc(t, "12345", 5, 0, 0, ids, 32);
        if (!llama3) {
            /* one word: 34 merges first, then 12; "12 34" is no merge */
            assert_int_equal(n, 3);
            assert_int_equal(ids[0], i12);
            assert_int_equal(ids[1], i34);
            assert_int_equal(ids[2], '5');
        } else {
            /* "123" "45": 123 is a token, 4 and 5 do not merge */
            assert_int_equal(n, 3);
            assert_int_equal(ids[0], i123);
            assert_int_equal(ids[1], '4');
            assert_int_equal(ids[2], '5');
        }
        n = enc(t, "aaa", 3, 0, 0, ids, 32);
        assert_int_equal(n, 2);
        assert_int_equal(ids[0], iaa);
        assert_int_equal(ids[1], 'a');
        n = enc(t, "bcd", 3, 0, 0, ids, 32);  /* b c → bc (rank 4) before c d (rank 5) */
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], ibcd);
        n = enc(t, "xyz", 3, 0, 0, ids, 32);
        if (llama3) {
            assert_int_equal(n, 1);
            assert_int_equal(ids[0], ixyz);
        } else {
            assert_int_equal(n, 3);
            assert_int_equal(ids[0], 'x');
        }
        /* A space is the byte character U+0120 'Ġ'; a newline is 'Ċ'. */
        n = enc(t, " \n", 2, 0, 0, ids, 32);
        assert_int_equal(n, 2);
        assert_int_equal(ids[0], 32);
        assert_int_equal(ids[1], 10);
        size_t tl;
        assert_memory_equal(tok_text(t, 32, &tl), "\xC4\xA0", 2);
        char buf[8];
        assert_int_equal(tok_piece(t, 32, 0, buf, sizeof buf), 1);
        assert_int_equal(buf[0], ' ');
        assert_int_equal(tok_piece(t, 0xAD, 0, buf, sizeof buf), 1);  /* soft hyphen, mapped */
        assert_int_equal((uint8_t)buf[0], 0xAD);
        assert_int_equal(tok_bos(t), -1);
        assert_false(tok_add_bos(t));  /* no BOS token, so none is added */
        bv_close(t, g, &v);
    }
    tu_rmtree(dir);
}

static void test_bpe_special(void **state)
{
    (void)state;
    struct wv w;
    struct tokenizer *t = wv_open(&w, "llama-bpe");
    int32_t bot = tok_find(t, "<|begin_of_text|>", 17), eot = tok_find(t, "<|eot_id|>", 10);
    int32_t eos = tok_find(t, "<|end_of_text|>", 15), tool = tok_find(t, "<tool>", 6);
    int32_t hi = tok_find(t, "hi", 2);
    assert_true(bot >= 256 && eot >= 256 && eos == eot + 1 && tool >= 256 && hi >= 256);
    assert_int_equal(tok_bos(t), bot);
    assert_int_equal(tok_eos(t), eos);
    static const char s[] = "<|begin_of_text|>hi<|eot_id|><tool>hi";
    int32_t ids[64];
    size_t n = enc(t, s, sizeof s - 1, 1, 1, ids, 64);
    assert_int_equal(n, 6);
    assert_int_equal(ids[0], bot);
    assert_int_equal(ids[1], bot);
    assert_int_equal(ids[2], hi);
    assert_int_equal(ids[3], eot);
    assert_int_equal(ids[4], tool);
    assert_int_equal(ids[5], hi);
    /* Without parse_special the same text is plain text: no special ids, decodes back. */
    n = enc(t, s, sizeof s - 1, 0, 0, ids, 64);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] != bot && ids[i] != eot && ids[i] != tool);
    size_t dl;
    char *d = detok(t, ids, n, &dl);
    assert_int_equal(dl, sizeof s - 1);
    assert_memory_equal(d, s, dl);
    free(d);
    /* End of generation: EOS, and the control token <|eot_id|>. */
    assert_true(tok_is_eog(t, eos));
    assert_true(tok_is_eog(t, eot));
    assert_false(tok_is_eog(t, bot));
    assert_false(tok_is_eog(t, hi));
    /* Control pieces are hidden unless asked for; user-defined ones always show. */
    char buf[32];
    assert_int_equal(tok_piece(t, eot, 0, buf, sizeof buf), 0);
    assert_int_equal(tok_piece(t, eot, 1, buf, sizeof buf), 10);
    assert_string_equal(buf, "<|eot_id|>");
    assert_int_equal(tok_piece(t, tool, 0, buf, sizeof buf), 6);
    wv_close(&w);
}

/* The end-of-generation set follows llama.cpp's rules: tokens named by text end generation
 * (and become control tokens) whatever their type in the file, fill-in-the-middle
 * pad/repo/separator tokens too, and two model-specific exceptions drop <|end|> and </s>. */
static void test_bpe_eog_rules(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct bpe_vocab v;
    struct gguf *g;
    bv_init(&v);
    bv_word(&v, "hi");
    int bot = bv_token(&v, "<|begin_of_text|>", TOK_T_CONTROL);
    int eot_txt = bv_token(&v, "<|end_of_text|>", TOK_T_NORMAL);
    int im_end = bv_token(&v, "<|im_end|>", TOK_T_USER_DEFINED);
    int eom = bv_token(&v, "<|eom_id|>", TOK_T_CONTROL);
    int fim_pad = bv_token(&v, "<|fim_pad|>", TOK_T_NORMAL);
    int file_sep = bv_token(&v, "<|file_sep|>", TOK_T_CONTROL);
    int end = bv_token(&v, "<|end|>", TOK_T_CONTROL);
    int ret = bv_token(&v, "<|return|>", TOK_T_CONTROL);
    int call = bv_token(&v, "<|call|>", TOK_T_CONTROL);
    int s_end = bv_token(&v, "</s>", TOK_T_CONTROL);
    int tool_resp = bv_token(&v, "<|tool_response>", TOK_T_CONTROL);
    struct tokenizer *t = bv_open(&v, dir, "llama-bpe", bot, -1, &g);
    int32_t hi = tok_find(t, "hi", 2);
    assert_true(hi >= 0);
    int32_t eog[] = {eot_txt, im_end, eom, fim_pad, file_sep, ret, call, tool_resp};
    for (size_t i = 0; i < sizeof eog / sizeof eog[0]; i++) {
        assert_true(tok_is_eog(t, eog[i]));
        assert_int_equal(tok_type(t, eog[i]), TOK_T_CONTROL);
    }
    assert_false(tok_is_eog(t, bot));
    assert_false(tok_is_eog(t, hi));
    assert_false(tok_is_eog(t, -1));
    /* <|return|> and <|call|> are there, so <|end|> only closes a message (gpt-oss). */
    assert_false(tok_is_eog(t, end));
    assert_int_equal(tok_type(t, end), TOK_T_USER_DEFINED);
    /* <|tool_response> is there, so </s> is plain text (Gemma 4). */
    assert_false(tok_is_eog(t, s_end));
    assert_int_equal(tok_type(t, s_end), TOK_T_NORMAL);
    /* A name-matched token is a control token now: plain text never yields it. */
    static const char txt[] = "<|end_of_text|>";
    int32_t ids[64];
    size_t n = enc(t, txt, sizeof txt - 1, 0, 0, ids, 64);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] != eot_txt);
    bv_close(t, g, &v);
    tu_rmtree(dir);
}

static void test_bpe_fuzz_and_long(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    const char *pres[] = {"llama-bpe", "gpt2", "smollm"};
    for (int p = 0; p < 3; p++) {
        struct bpe_vocab v;
        struct gguf *g;
        struct tokenizer *t = word_vocab(dir, pres[p], &v, &g);
        fuzz_roundtrip(t, 0, 800);
        long_line(t, 0);
        bv_close(t, g, &v);
    }
    tu_rmtree(dir);
}

/* ---- malformed vocabularies ---------------------------------------------------------------- */

static void expect_open_error(const char *dir, struct gguf_out *w, const char *needle)
{
    char path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    gguf_out_str(w, "general.architecture", "llama");
    if (gguf_out_write(w, path, err, sizeof err) != 0) fail_msg("gguf_out_write: %s", err);
    gguf_out_free(w);
    struct gguf *g = NULL;
    if (gguf_open(&g, path, err, sizeof err) != 0) fail_msg("gguf_open: %s", err);
    struct tokenizer *t = (struct tokenizer *)0x1;
    assert_int_equal(tok_open(&t, g, err, sizeof err), -1);
    assert_null(t);
    if (!strstr(err, needle)) fail_msg("error '%s' does not mention '%s'", err, needle);
    gguf_close(g);
}

/* Which keys a malformed vocabulary of test_bad_vocab has (written in this order). */
enum {
    BV_MODEL_U32 = 1 << 0,   /* tokenizer.ggml.model as a number instead of the model string */
    BV_TOKS = 1 << 1,        /* the 6 tokens */
    BV_TOKS_F32 = 1 << 2,    /* tokens as an array of floats */
    BV_SCORES = 1 << 3,      /* 6 scores */
    BV_SCORES5 = 1 << 4,     /* 5 scores for 6 tokens */
    BV_TYPES = 1 << 5,       /* valid token types */
    BV_BADTYPES = 1 << 6,    /* token 4 of type 9 */
    BV_BOS6 = 1 << 7,        /* bos_token_id past the vocabulary */
    BV_ADDBOS_STR = 1 << 8,  /* add_bos_token as a string */
    BV_BADMERGE = 1 << 9,    /* a merge without the space between its halves */
};

static void test_bad_vocab(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    const char *toks[] = {"<unk>", "<s>", "</s>", "a", "b", "ab"};
    const float scores[] = {0, 0, 0, -1, -2, -0.5f};
    const int32_t types[] = {2, 3, 3, 1, 1, 1};
    const int32_t badtypes[] = {2, 3, 3, 1, 9, 1};
    const char *badmerge[] = {"ab"};
    static const struct {
        const char *model;   /* tokenizer.ggml.model, NULL for none */
        unsigned keys;       /* BV_* */
        const char *needle;  /* what the error must name */
    } bad[] = {
        {NULL, 0, "tokenizer.ggml.model"},
        {"bert", BV_TOKS, "bert"},
        {NULL, BV_MODEL_U32, "tokenizer.ggml.model"},
        {"llama", 0, "tokenizer.ggml.tokens"},
        {"llama", BV_TOKS_F32, "tokenizer.ggml.tokens"},
        {"llama", BV_TOKS, "tokenizer.ggml.scores"},
        {"llama", BV_TOKS | BV_SCORES5, "tokenizer.ggml.scores"},
        {"llama", BV_TOKS | BV_SCORES | BV_BADTYPES, "token_type[4]"},
        {"llama", BV_TOKS | BV_SCORES | BV_TYPES | BV_BOS6, "bos_token_id"},
        {"llama", BV_TOKS | BV_SCORES | BV_ADDBOS_STR, "add_bos_token"},
        {"gpt2", BV_TOKS, "tokenizer.ggml.merges"},
        {"gpt2", BV_TOKS | BV_BADMERGE, "merges[0]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned k = bad[i].keys;
        struct gguf_out *w = gguf_out_new();
        assert_non_null(w);
        if (bad[i].model) gguf_out_str(w, "tokenizer.ggml.model", bad[i].model);
        if (k & BV_MODEL_U32) gguf_out_u32(w, "tokenizer.ggml.model", 1);
        if (k & BV_TOKS) gguf_out_arr_str(w, "tokenizer.ggml.tokens", toks, 6);
        if (k & BV_TOKS_F32) gguf_out_arr_f32(w, "tokenizer.ggml.tokens", scores, 6);
        if (k & (BV_SCORES | BV_SCORES5))
            gguf_out_arr_f32(w, "tokenizer.ggml.scores", scores, k & BV_SCORES5 ? 5 : 6);
        if (k & (BV_TYPES | BV_BADTYPES))
            gguf_out_arr_i32(w, "tokenizer.ggml.token_type", k & BV_BADTYPES ? badtypes : types, 6);
        if (k & BV_BOS6) gguf_out_u32(w, "tokenizer.ggml.bos_token_id", 6);
        if (k & BV_ADDBOS_STR) gguf_out_str(w, "tokenizer.ggml.add_bos_token", "yes");
        if (k & BV_BADMERGE) gguf_out_arr_str(w, "tokenizer.ggml.merges", badmerge, 1);
        expect_open_error(dir, w, bad[i].needle);
    }

    /* A tiny valid SPM vocabulary without byte tokens: unknown characters fall back to the
     * single-byte token when there is one, else <unk>; add_space_prefix=false is honoured. */
    struct gguf_out *w = spm_writer(toks, scores, types, 6);
    gguf_out_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    gguf_out_bool(w, "tokenizer.ggml.add_eos_token", 1);
    struct gguf *g;
    struct tokenizer *t = gw_open_tok(w, dir, "tiny", &g);
    int32_t ids[16];
    size_t n = enc(t, "abzb", 4, 1, 0, ids, 16);
    assert_int_equal(n, 5);
    assert_int_equal(ids[0], 1);  /* BOS */
    assert_int_equal(ids[1], 5);  /* ab */
    assert_int_equal(ids[2], 0);  /* z → <unk> */
    assert_int_equal(ids[3], 4);  /* b */
    assert_int_equal(ids[4], 2);  /* EOS (add_eos_token) */
    tok_close(t);
    gguf_close(g);
    tu_rmtree(dir);
}

/* Control tokens never come out of plain text, even where merges could spell them. */
static void test_spm_control_not_from_text(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "<", "s", ">", "<s", "\xE2\x96\x81<s"};
    const float scores[] = {0, 0, 0, -1, -2, -2, -2, -1.5f, -1.2f};
    const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 1};
    struct gguf *g;
    struct tokenizer *t = gw_open_tok(spm_writer(toks, scores, types, 9), dir, "ctl", &g);
    int32_t ids[16];
    size_t n = enc(t, "<s>", 3, 0, 0, ids, 16);  /* "▁<s" + ">" would spell <s> */
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 8);
    assert_int_equal(ids[1], 6);
    n = enc(t, "<s>", 3, 0, 1, ids, 16);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    tok_close(t);
    gguf_close(g);
    tu_rmtree(dir);
}

/* A SentencePiece vocabulary made here (byte tokens, a few pieces), so the SPM encoder's
 * robustness is tested under ASan even without ../shared. Its "e▁" piece (▁ after another
 * character) makes the encoder merge the whole text in one pass, the path the Llama
 * vocabulary (merged per ▁-segment) does not take. */
static void test_spm_synthetic_fuzz(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    static const char *const pieces[] = {"\xE2\x96\x81", "a", "b", "e", "h", "l", "o", "x",
                                         "\xE2\x96\x81h", "he", "ll", "llo", "\xE2\x96\x81hello",
                                         "\xE2\x96\x81" "a", "\xC3\xA9", "\xE2\x96\x81\xE2\x96\x81", "aa",
                                         "\xE2\x96\x81he", "e\xE2\x96\x81"};
    size_t np = sizeof pieces / sizeof pieces[0], n = 3 + 256 + np;
    char **toks = calloc(n, sizeof *toks);
    float *scores = calloc(n, sizeof *scores);
    int32_t *types = calloc(n, sizeof *types);
    assert_non_null(toks);
    assert_non_null(scores);
    assert_non_null(types);
    const char *sp[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        toks[i] = strdup(sp[i]);
        types[i] = i ? TOK_T_CONTROL : TOK_T_UNKNOWN;
    }
    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        toks[3 + b] = strdup(buf);
        types[3 + b] = TOK_T_BYTE;
    }
    for (size_t i = 0; i < np; i++) {
        toks[259 + i] = strdup(pieces[i]);
        scores[259 + i] = -(float)i;
        types[259 + i] = TOK_T_NORMAL;
    }
    struct gguf *g;
    struct tokenizer *t = gw_open_tok(spm_writer((const char *const *)toks, scores, types, n), dir,
                                      "spm", &g);
    int32_t ids[16];
    size_t k = enc(t, "hello", 5, 1, 0, ids, 16);
    assert_int_equal(k, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], tok_find(t, "\xE2\x96\x81hello", 8));
    k = enc(t, "he ", 3, 0, 0, ids, 16);  /* ▁h (-8), then ▁he (-17) beats e▁ (-18) */
    assert_int_equal(k, 2);
    assert_int_equal(ids[0], tok_find(t, "\xE2\x96\x81he", 5));
    assert_int_equal(ids[1], 259);
    k = enc(t, "e ", 2, 0, 0, ids, 16);  /* "▁e" is no piece: ▁ + e▁ */
    assert_int_equal(k, 2);
    assert_int_equal(ids[0], 259);
    assert_int_equal(ids[1], tok_find(t, "e\xE2\x96\x81", 4));
    k = enc(t, "\x01", 1, 0, 0, ids, 16);  /* ▁ then byte fallback */
    assert_int_equal(k, 2);
    assert_int_equal(ids[0], 259);
    assert_int_equal(ids[1], 3 + 1);
    fuzz_roundtrip(t, 1, 1500);
    long_line(t, 1);
    tok_close(t);
    gguf_close(g);
    for (size_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    tu_rmtree(dir);
}

/* ---- Llama 3: the real vocabulary against llama.cpp --------------------------------------- */

/* Unicode 15.0/15.1 code points get the classes llama.cpp's tables give them (Unicode 15.1);
 * code points first assigned in 16.0 are still "other" there, and so here. */
static void test_unicode15_classes(void **state)
{
    (void)state;
    static const struct { uint32_t cp; int cls; } v[] = {
        {0x11F04, TOK_CP_LETTER}, {0x11F00, TOK_CP_MARK}, {0x11F50, TOK_CP_NUMBER},  /* Kawi */
        {0x11F59, TOK_CP_NUMBER},
        {0x1D2C0, TOK_CP_NUMBER}, {0x1D2D3, TOK_CP_NUMBER}, {0x1D2D4, TOK_CP_OTHER}, /* Kaktovik */
        {0x1E4D0, TOK_CP_LETTER}, {0x1E4EB, TOK_CP_LETTER}, {0x1E4EC, TOK_CP_MARK},  /* Nag Mundari */
        {0x1E4F0, TOK_CP_NUMBER}, {0x1E4F9, TOK_CP_NUMBER},
        {0x31350, TOK_CP_LETTER}, {0x323AF, TOK_CP_LETTER}, {0x323B0, TOK_CP_OTHER}, /* CJK Ext H */
        {0x2EBF0, TOK_CP_LETTER}, {0x2EE5D, TOK_CP_LETTER}, {0x2EE5E, TOK_CP_OTHER}, /* CJK Ext I (15.1) */
        {0x1E030, TOK_CP_LETTER}, {0x1E06D, TOK_CP_LETTER}, {0x1E08F, TOK_CP_MARK},  /* Cyrillic ext. D */
        {0x0CF3, TOK_CP_MARK},                                                       /* Kannada */
        {0x10D4A, TOK_CP_OTHER}, {0x1CCF0, TOK_CP_OTHER},                            /* Unicode 16.0 */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (tok_cp_class(v[i].cp) != v[i].cls)
            fail_msg("U+%04X: class %d, want %d", v[i].cp, tok_cp_class(v[i].cp), v[i].cls);
    for (uint32_t c = 0x1D2C0; c <= 0x1D2D3; c++) assert_int_equal(tok_cp_class(c), TOK_CP_NUMBER);
}

static void expect_ids(const struct tokenizer *t, const char *s, const int32_t *want, size_t nw)
{
    int32_t got[256];
    size_t n = enc(t, s, strlen(s), 0, 0, got, 256);
    int same = n == nw;
    for (size_t i = 0; same && i < n; i++) same = got[i] == want[i];
    if (!same) {
        print_message("'%s': got", s);
        for (size_t i = 0; i < n; i++) print_message(" %d", got[i]);
        print_message("\n");
        fail();
    }
}

/* Kaktovik numerals are \p{N} since Unicode 15.0: the space before them is a word of its
 * own (220) instead of starting a punctuation run with them, as llama.cpp splits it. */
static void test_llama3_unicode15_split(void **state)
{
    struct tokenizer *t = shared_open(state);
    static const int32_t kak[] = {42, 10114, 869, 1609, 220, 57352, 233, 222, 57352, 233, 223,
                                  57352, 233, 224};
    static const int32_t tot[] = {5143, 284, 220, 57352, 233, 222, 57352, 233, 223};
    expect_ids(t, "Kaktovik \xF0\x9D\x8B\x80\xF0\x9D\x8B\x81\xF0\x9D\x8B\x82", kak,
               sizeof kak / sizeof kak[0]);
    expect_ids(t, "total = \xF0\x9D\x8B\x80\xF0\x9D\x8B\x81", tot, sizeof tot / sizeof tot[0]);
}

/* llama.cpp's end-of-generation set on the Llama 3 vocabulary is {128001, 128009} (its
 * isEogToken over every id): <|end_of_text|>, which a base model ends with, and <|eot_id|>.
 * This is the 3.0 vocabulary: 128008 is a reserved token, not <|eom_id|> as in 3.1. */
static void test_llama3_eog(void **state)
{
    struct tokenizer *t = shared_open(state);
    static const struct { int32_t id; const char *text; } v[] = {
        {128001, "<|end_of_text|>"}, {128009, "<|eot_id|>"}, {128000, "<|begin_of_text|>"},
        {128006, "<|start_header_id|>"}, {128008, "<|reserved_special_token_4|>"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len;
        const char *tx = tok_text(t, v[i].id, &len);
        assert_int_equal(len, strlen(v[i].text));
        assert_memory_equal(tx, v[i].text, len);
    }
    int32_t eog[8];
    size_t n = 0;
    for (int32_t id = 0; id < tok_n_vocab(t); id++)
        if (tok_is_eog(t, id)) {
            assert_true(n < 8);
            eog[n++] = id;
        }
    assert_int_equal(n, 2);
    assert_int_equal(eog[0], 128001);
    assert_int_equal(eog[1], 128009);
}

/* tests/data/llama3-tok.inp (prose, code, numbers, whitespace runs, every script, emoji,
 * Unicode 15 code points); the ids in llama3-tok.out are llama.cpp's
 * (tests/tools/llamacpp_tokenize.mjs). */
static void test_llama3_vectors(void **state)
{
    struct tokenizer *t = shared_open(state);
    assert_true(check_vectors(t, "tests/data/llama3-tok.inp", "tests/data/llama3-tok.out", 0,
                              "Llama 3 vectors") >= 250);
}

int main(void)
{
    const struct CMUnitTest spm[] = {
    cmocka_unit_test(test_spm_vectors),
    cmocka_unit_test(test_spm_bos_special),
    cmocka_unit_test(test_spm_invalid_utf8),
    cmocka_unit_test(test_spm_fuzz),
    cmocka_unit_test(test_spm_long_line),
    };
    const struct CMUnitTest bpe[] = {
    cmocka_unit_test(test_bpe_llama3_split),
    cmocka_unit_test(test_bpe_gpt2_split),
    cmocka_unit_test(test_bpe_merge_order),
    cmocka_unit_test(test_bpe_special),
    cmocka_unit_test(test_bpe_eog_rules),
    cmocka_unit_test(test_bpe_fuzz_and_long),
    cmocka_unit_test(test_bad_vocab),
    cmocka_unit_test(test_spm_control_not_from_text),
    cmocka_unit_test(test_spm_synthetic_fuzz),
    cmocka_unit_test(test_unicode15_classes),
    };
    const struct CMUnitTest llama3[] = {
    cmocka_unit_test(test_llama3_unicode15_split),
    cmocka_unit_test(test_llama3_eog),
    cmocka_unit_test(test_llama3_vectors),
    };
    int fails = cmocka_run_group_tests_name("tokenizer_spm", spm, spm_setup, shared_teardown);
    fails += cmocka_run_group_tests_name("tokenizer_bpe", bpe, NULL, NULL);
    fails += cmocka_run_group_tests_name("tokenizer_llama3", llama3, llama3_setup, shared_teardown);
    return fails ? 1 : 0;
}
