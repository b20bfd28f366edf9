/* tests/tools/randmodel: random-weight Llama GGUF models.
 *
 * Tensors are named and shaped as llama.cpp names them (ggml order: ne[0] = input dim).
 * Every row is generated from its own PRNG stream (seed, tensor name, row index), so the
 * bytes do not depend on how the writer chunks the tensor, and two models written with
 * the same seed but different weight types hold the same underlying float weights (the
 * decoder tests compare a quantized model with its F32 twin this way).
 *
 * Rows are generated and quantized inside the writer's fill callback, so nothing larger
 * than a chunk is held in memory. Values are Irwin-Hall(4) approximations of a Gaussian
 * (four 16-bit uniforms from one 64-bit xoshiro256** draw), std 0.5/sqrt(cols); norm
 * weights are 1 ± 0.05.
 *
 * Big models repeat rows. Generating is cheap (a few ns per weight) but the reference K-quant
 * quantizers cost ~100 ns per weight, which would make a 1.1B Q4_K model take minutes. So
 * when a model has more than RM_UNIQUE_WEIGHTS matrix weights, each matrix keeps only a
 * proportional number of distinct rows (at least RM_MIN_UNIQUE_ROWS): row r < U is itself,
 * row r >= U is a copy of row hash(r) % U, quantized once and cached. The choice depends
 * only on the shape, never on the type, so F32 and quantized twins still match. Models below
 * the budget (every test model) have all rows distinct. Decoding speed is unaffected: every
 * row is still its own bytes in the file. */
#include "tests/tools/randmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "gpu/quant.h"
#include "gpu/rng.h"
#include "app/train/gguf_out.h"

void randmodel_defaults(struct randmodel_spec *s)
{
    *s = (struct randmodel_spec){
        .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 160, .vocab = 512,
        .ctx = 256, .type = GGUF_T_F32, .embd_type = -1, .tied = 0, .rope_base = 10000.0f,
        .seed = 1, .tokenizer_from = NULL, .add_tokens = NULL, .n_add_tokens = 0,
        .chat_template = NULL, .boost_token = -1, .no_add_bos = 0,
    };
}

/* ---- PRNG: gpu/rng xoshiro256**, one stream per row ------------------------------------- */

/* Approximately N(0, 1): the sum of four uniforms, centred and scaled to unit variance. */
static inline float gauss(uint64_t r[4])
{
    uint64_t v = rng_next(r);
    int32_t sum = (int32_t)(v & 0xffff) + (int32_t)((v >> 16) & 0xffff) +
                  (int32_t)((v >> 32) & 0xffff) + (int32_t)(v >> 48);
    /* Each uniform has variance 65536²/12; four of them 65536²/3. */
    return (float)(sum - 2 * 65535) * (float)(1.7320508 / 65536.0);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* ---- tensor fill ------------------------------------------------------------------------ */

#define RM_UNIQUE_WEIGHTS (UINT64_C(1) << 26)
#define RM_MIN_UNIQUE_ROWS 64

/* The cache of quantized distinct rows of the tensor being written (tensors are written
 * one after another, so one cache is shared and rebuilt per tensor). */
struct rowpool {
    const void *owner;
    uint8_t *rows;      /* U * row_bytes */
    uint8_t *valid;     /* U flags */
    uint64_t cap_bytes, cap_rows;
};

struct tfill {
    uint64_t seed;      /* per tensor */
    int type;
    int is_norm;
    uint64_t cols, rows;
    uint64_t uniq;      /* distinct rows; == rows when nothing repeats */
    uint64_t row_bytes;
    float *row;         /* shared scratch: cols floats */
    uint8_t *qrow;      /* shared scratch: row_bytes, for partial rows */
    struct rowpool *pool;
    int64_t boost_row;  /* the row scaled up (randmodel_spec.boost_token); -1 none */
};

#define RM_BOOST 100.0f

static void gen_row(const struct tfill *f, uint64_t r, float *x)
{
    uint64_t rng[4];
    rng_seed(rng, f->seed ^ (r * 0xd1342543de82ef95ull));
    if (f->is_norm) {
        for (uint64_t i = 0; i < f->cols; i++) x[i] = 1.0f + 0.05f * gauss(rng);
        return;
    }
    float sd = 0.5f / sqrtf((float)f->cols);
    for (uint64_t i = 0; i < f->cols; i++) x[i] = sd * gauss(rng);
}

static void encode_row(const struct tfill *f, const float *x, void *dst)
{
    if (f->type == GGUF_T_F32) memcpy(dst, x, f->cols * sizeof(float));
    else qt_quant_row(f->type, x, dst, (size_t)f->cols);
}

/* The encoded bytes of row r, when rows repeat (from the pool, filling it on first use). */
static const uint8_t *pooled_row(struct tfill *f, uint64_t r)
{
    struct rowpool *p = f->pool;
    if (p->owner != f) {
        memset(p->valid, 0, (size_t)f->uniq);
        p->owner = f;
    }
    uint64_t x = f->seed ^ r;
    uint64_t u = r < f->uniq ? r : rng_splitmix64(&x) % f->uniq;
    uint8_t *dst = p->rows + u * f->row_bytes;
    if (!p->valid[u]) {
        gen_row(f, u, f->row);
        encode_row(f, f->row, dst);
        p->valid[u] = 1;
    }
    return dst;
}

static int fill_cb(void *ctx, void *dst, uint64_t off, uint64_t n)
{
    struct tfill *f = ctx;
    uint8_t *out = dst;
    uint64_t end = off + n;
    for (uint64_t r = off / f->row_bytes; r * f->row_bytes < end; r++) {
        uint64_t rs = r * f->row_bytes, re = rs + f->row_bytes;
        uint64_t a = rs > off ? rs : off, b = re < end ? re : end;
        if (f->boost_row >= 0 && r == (uint64_t)f->boost_row) {
            gen_row(f, r, f->row);
            for (uint64_t i = 0; i < f->cols; i++) f->row[i] *= RM_BOOST;
            encode_row(f, f->row, f->qrow);
            memcpy(out + (a - off), f->qrow + (a - rs), b - a);
            continue;
        }
        if (f->uniq < f->rows) {
            memcpy(out + (a - off), pooled_row(f, r) + (a - rs), b - a);
            continue;
        }
        gen_row(f, r, f->row);
        if (a == rs && b == re) {
            encode_row(f, f->row, out + (rs - off));
        } else {   /* a row cut by the chunk boundary (the writer avoids this) */
            encode_row(f, f->row, f->qrow);
            memcpy(out + (a - off), f->qrow + (a - rs), b - a);
        }
    }
    return 0;
}

/* ---- synthetic SentencePiece vocabulary ------------------------------------------------ */

static const char *const words[] = {
    "the", "a", "and", "to", "of", "was", "he", "she", "it", "in", "is", "you", "that", "for",
    "on", "with", "they", "his", "her", "said", "one", "day", "Once", "upon", "time", "there",
    "little", "girl", "boy", "big", "happy", "play", "friend", "mom", "dog", "cat", "tree",
    "sun", "very", "were", "had", "have", "be", "not", "but", "all", "so", "what", "we", "can",
    "Lily", "Tim", "ball", "park", "went", "saw", "wanted", "help", "love", "good", "new",
    "hello", "world", "I", "The", "He", "She", "They", "It", "my", "your", "are", "at", "from",
    "ing", "ed", "er", "ly", "es",
};

struct vocab {
    char **tok;
    float *score;
    int32_t *type;
    int n, cap;
};

static int vocab_has(const struct vocab *v, const char *s)
{
    for (int i = 259; i < v->n; i++)
        if (!strcmp(v->tok[i], s)) return 1;
    return 0;
}

static int vocab_add(struct vocab *v, const char *s, float score, int32_t type)
{
    if (v->n >= v->cap) return 0;
    char *d = strdup(s);
    if (!d) return -1;
    v->tok[v->n] = d;
    v->score[v->n] = score;
    v->type[v->n] = type;
    v->n++;
    return 0;
}

static void vocab_free(struct vocab *v)
{
    if (v->tok)
        for (int i = 0; i < v->n; i++) free(v->tok[i]);
    free(v->tok);
    free(v->score);
    free(v->type);
}

/* Adds "▁word" with every prefix (so SentencePiece merges can reach it) and "word". */
static int add_word_pieces(struct vocab *v, const char *w)
{
    char buf[64];
    int rc = 0;
    for (int with_space = 1; with_space >= 0 && rc == 0; with_space--) {
        int o = 0;
        if (with_space) {
            memcpy(buf, "\xe2\x96\x81", 3);
            o = 3;
        }
        for (size_t i = 0; w[i] && o < 60 && rc == 0; i++) {
            buf[o++] = w[i];
            buf[o] = 0;
            if (o > 1 && !vocab_has(v, buf))
                rc = vocab_add(v, buf, -(float)v->n, 1);
        }
    }
    return rc;
}

/* <unk> <s> </s>, byte tokens, "▁", letters and digits, word pieces, then "tokN" filler. */
static int synth_vocab(struct vocab *v, int n)
{
    v->cap = n;
    v->tok = calloc((size_t)n, sizeof *v->tok);
    v->score = calloc((size_t)n, sizeof *v->score);
    v->type = calloc((size_t)n, sizeof *v->type);
    if (!v->tok || !v->score || !v->type) return -1;
    int rc = 0;
    rc |= vocab_add(v, "<unk>", 0, 2);
    rc |= vocab_add(v, "<s>", 0, 3);
    rc |= vocab_add(v, "</s>", 0, 3);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        rc |= vocab_add(v, s, 0, 6);
    }
    rc |= vocab_add(v, "\xe2\x96\x81", -(float)v->n, 1);
    static const char singles[] =
        "etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,!?'\"-:;()";
    for (const char *c = singles; *c; c++) {
        char s[2] = {*c, 0};
        rc |= vocab_add(v, s, -(float)v->n, 1);
    }
    for (size_t i = 0; i < sizeof words / sizeof words[0] && rc == 0; i++)
        rc |= add_word_pieces(v, words[i]);
    for (int k = 0; v->n < n && rc == 0; k++) {
        char s[32];
        snprintf(s, sizeof s, "tok%d", k);
        rc |= vocab_add(v, s, -(float)v->n, 1);
    }
    return rc ? -1 : 0;
}

/* ---- the model -------------------------------------------------------------------------- */

static int check_cols(int type, int cols, const char *what, char *err, size_t errlen)
{
    uint64_t rb;
    if (gguf_row_bytes((uint32_t)type, (uint64_t)cols, &rb)) {
        snprintf(err, errlen, "randmodel: %s %d is not a multiple of the %s block size %llu", what,
               cols, gguf_type_name((uint32_t)type),
               (unsigned long long)gguf_type_block_elems((uint32_t)type));
        return -1;
    }
    return 0;
}

static int check_type(int type, const char *what, char *err, size_t errlen)
{
    if (type != GGUF_T_F32 && !qt_supported(type)) {
        snprintf(err, errlen, "randmodel: %s type %d (%s) cannot be generated", what, type,
               gguf_type_name((uint32_t)type));
        return -1;
    }
    return 0;
}

static int check_spec(const struct randmodel_spec *s, int embd_type, char *err, size_t errlen)
{
    if (s->dim <= 0 || s->n_layers <= 0 || s->n_heads <= 0 || s->n_kv_heads <= 0 ||
        s->ffn_dim <= 0 || s->ctx <= 0 || (!s->tokenizer_from && s->vocab <= 0)) {
        snprintf(err, errlen, "randmodel: every dimension must be positive");
        return -1;
    }
    if (s->dim % s->n_heads || (s->dim / s->n_heads) % 2) {
        snprintf(err, errlen, "randmodel: dim %d must be n_heads %d times an even head size",
               s->dim, s->n_heads);
        return -1;
    }
    if (s->n_heads % s->n_kv_heads) {
        snprintf(err, errlen, "randmodel: n_heads %d is not a multiple of n_kv_heads %d",
               s->n_heads, s->n_kv_heads);
        return -1;
    }
    if (s->tokenizer_from && s->no_add_bos) {
        snprintf(err, errlen, "randmodel: no_add_bos applies to the synthetic vocabulary only");
        return -1;
    }
    if (!s->tokenizer_from && s->vocab < 259) {
        snprintf(err, errlen, "randmodel: a synthetic vocabulary needs at least 259 tokens, not %d",
               s->vocab);
        return -1;
    }
    if (check_type(s->type, "weight", err, errlen) || check_type(embd_type, "embedding", err, errlen))
        return -1;
    if (check_cols(s->type, s->dim, "dim", err, errlen) ||
        check_cols(s->type, s->ffn_dim, "ffn_dim", err, errlen) ||
        check_cols(embd_type, s->dim, "dim", err, errlen))
        return -1;
    return 0;
}

struct model_ctx {
    struct tfill *fills;
    int n_fills, cap_fills;
    uint64_t total;     /* matrix weights in the model */
    float *row;
    uint8_t *qrow;
    struct rowpool pool;
};

static void add_tensor(struct gguf_out *w, struct model_ctx *m, const struct randmodel_spec *s,
                       const char *name, int type, int is_norm, uint64_t cols, uint64_t rows)
{
    struct tfill *f = &m->fills[m->n_fills++];
    f->seed = s->seed * 0x9e3779b97f4a7c15ull ^ hash_str(name);
    f->type = type;
    f->is_norm = is_norm;
    f->cols = cols;
    f->rows = rows;
    f->uniq = rows;
    if (m->total > RM_UNIQUE_WEIGHTS) {
        /* rows * budget / total, computed in floating point (the product may not fit). */
        uint64_t u = (uint64_t)((double)rows * (double)RM_UNIQUE_WEIGHTS / (double)m->total);
        if (u < RM_MIN_UNIQUE_ROWS) u = RM_MIN_UNIQUE_ROWS;
        if (u < rows) f->uniq = u;
    }
    gguf_row_bytes((uint32_t)type, cols, &f->row_bytes);   /* checked in check_spec */
    f->row = m->row;
    f->qrow = m->qrow;
    f->pool = &m->pool;
    f->boost_row = -1;
    /* The output projection: output.weight, or token_embd when tied. */
    if (s->boost_token >= 0 && (uint64_t)s->boost_token < rows &&
        (!strcmp(name, "output.weight") || (s->tied && !strcmp(name, "token_embd.weight"))))
        f->boost_row = s->boost_token;
    if (f->uniq < rows) {
        if (f->uniq > m->pool.cap_rows) m->pool.cap_rows = f->uniq;
        if (f->uniq * f->row_bytes > m->pool.cap_bytes) m->pool.cap_bytes = f->uniq * f->row_bytes;
    }
    uint64_t ne[2] = {cols, rows};
    gguf_out_tensor_fn(w, name, (uint32_t)type, rows > 1 || !is_norm ? 2 : 1, ne, fill_cb, f);
}

/* Rewrites the copied tokens, scores and types with control tokens appended up to s->vocab
 * (randmodel_spec.add_tokens). */
static int pad_vocab(struct gguf_out *w, const struct gguf *src, const struct gguf_kv *tok,
                     const struct randmodel_spec *s, char *err, size_t errlen)
{
    size_t n0 = (size_t)tok->arr_n, n = (size_t)s->vocab;
    const struct gguf_kv *sc = gguf_find(src, "tokenizer.ggml.scores");
    const struct gguf_kv *ty = gguf_find(src, "tokenizer.ggml.token_type");
    char **t = calloc(n, sizeof *t);
    float *score = calloc(n, sizeof *score);
    int32_t *type = calloc(n, sizeof *type);
    int rc = t && score && type ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct gguf_str str;
        char name[32];
        if (i < n0) {
            if (gguf_arr_str(tok, i, &str)) rc = -1;
            else t[i] = strndup(str.ptr, str.len);
            if (sc && gguf_arr_f32(sc, i, &score[i])) score[i] = 0;
            if (!ty || gguf_arr_i32(ty, i, &type[i])) type[i] = 1;
        } else {
            size_t k = i - n0;
            if (k < (size_t)s->n_add_tokens && s->add_tokens[k]) {
                t[i] = strdup(s->add_tokens[k]);
            } else {
                snprintf(name, sizeof name, "[control_%zu]", k + 1);
                t[i] = strdup(name);
            }
            type[i] = 3;   /* control */
        }
        if (rc == 0 && !t[i]) rc = -1;
    }
    if (rc == 0) {
        gguf_out_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)t, n);
        gguf_out_arr_f32(w, "tokenizer.ggml.scores", score, n);
        gguf_out_arr_i32(w, "tokenizer.ggml.token_type", type, n);
    } else {
        snprintf(err, errlen, "randmodel: cannot extend the vocabulary of %s", s->tokenizer_from);
    }
    for (size_t i = 0; t && i < n; i++) free(t[i]);
    free(t);
    free(score);
    free(type);
    return rc;
}

static int write_tokenizer(struct gguf_out *w, const struct randmodel_spec *s, int *vocab,
                           char *err, size_t errlen)
{
    if (s->tokenizer_from) {
        struct gguf *src;
        char e[512];
        if (gguf_open(&src, s->tokenizer_from, e, sizeof e)) {
            snprintf(err, errlen, "randmodel: tokenizer source: %s", e);
            return -1;
        }
        const struct gguf_kv *tok = gguf_find(src, "tokenizer.ggml.tokens");
        if (!tok || tok->type != GGUF_VT_ARRAY || tok->arr_type != GGUF_VT_STRING ||
            tok->arr_n == 0 || tok->arr_n > INT32_MAX) {
            snprintf(err, errlen, "randmodel: %s has no tokenizer.ggml.tokens string array",
                   s->tokenizer_from);
            gguf_close(src);
            return -1;
        }
        *vocab = (int)tok->arr_n;
        gguf_out_copy(w, src, "tokenizer.");
        int rc = s->vocab > *vocab ? pad_vocab(w, src, tok, s, err, errlen) : 0;
        if (rc == 0 && s->vocab > *vocab) *vocab = s->vocab;
        gguf_close(src);
        return rc;
    }
    struct vocab v = {0};
    if (synth_vocab(&v, s->vocab)) {
        vocab_free(&v);
        snprintf(err, errlen, "randmodel: out of memory building the vocabulary");
        return -1;
    }
    gguf_out_str(w, "tokenizer.ggml.model", "llama");
    gguf_out_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, (size_t)v.n);
    gguf_out_arr_f32(w, "tokenizer.ggml.scores", v.score, (size_t)v.n);
    gguf_out_arr_i32(w, "tokenizer.ggml.token_type", v.type, (size_t)v.n);
    gguf_out_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_out_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_out_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_out_bool(w, "tokenizer.ggml.add_bos_token", !s->no_add_bos);
    gguf_out_bool(w, "tokenizer.ggml.add_eos_token", 0);
    *vocab = v.n;
    vocab_free(&v);
    return 0;
}

int randmodel_write(const char *path, const struct randmodel_spec *spec, char *err,
                    size_t errlen)
{
    struct randmodel_spec s = *spec;
    if (s.rope_base <= 0) s.rope_base = 10000.0f;
    int embd_type = s.embd_type < 0 ? s.type : s.embd_type;
    if (check_spec(&s, embd_type, err, errlen)) return -1;

    struct gguf_out *w = gguf_out_new();
    if (!w) {
        snprintf(err, errlen, "randmodel: out of memory");
        return -1;
    }
    int vocab = s.vocab;
    if (write_tokenizer(w, &s, &vocab, err, errlen)) {
        gguf_out_free(w);
        return -1;
    }
    if (s.chat_template) gguf_out_str(w, "tokenizer.chat_template", s.chat_template);
    int head_dim = s.dim / s.n_heads;
    gguf_out_str(w, "general.architecture", "llama");
    gguf_out_str(w, "general.name", "cmif random llama");
    gguf_out_u32(w, "llama.context_length", (uint32_t)s.ctx);
    gguf_out_u32(w, "llama.embedding_length", (uint32_t)s.dim);
    gguf_out_u32(w, "llama.feed_forward_length", (uint32_t)s.ffn_dim);
    gguf_out_u32(w, "llama.block_count", (uint32_t)s.n_layers);
    gguf_out_u32(w, "llama.attention.head_count", (uint32_t)s.n_heads);
    gguf_out_u32(w, "llama.attention.head_count_kv", (uint32_t)s.n_kv_heads);
    gguf_out_u32(w, "llama.rope.dimension_count", (uint32_t)head_dim);
    gguf_out_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_out_f32(w, "llama.rope.freq_base", s.rope_base);
    gguf_out_u32(w, "llama.vocab_size", (uint32_t)vocab);

    struct model_ctx m = {0};
    m.cap_fills = 3 + 9 * s.n_layers;
    uint64_t maxcols = (uint64_t)(s.dim > s.ffn_dim ? s.dim : s.ffn_dim);
    m.fills = calloc((size_t)m.cap_fills, sizeof *m.fills);
    m.row = malloc(maxcols * sizeof(float));
    m.qrow = malloc(maxcols * sizeof(float));   /* no type is larger than F32 per element */
    if (!m.fills || !m.row || !m.qrow) {
        snprintf(err, errlen, "randmodel: out of memory");
        free(m.fills), free(m.row), free(m.qrow);
        gguf_out_free(w);
        return -1;
    }
    uint64_t d = (uint64_t)s.dim, f = (uint64_t)s.ffn_dim, kvd = (uint64_t)(head_dim * s.n_kv_heads);
    m.total = d * (uint64_t)vocab * (s.tied ? 1 : 2) +
              (uint64_t)s.n_layers * (2 * d * d + 2 * d * kvd + 3 * d * f);
    add_tensor(w, &m, &s, "token_embd.weight", embd_type, 0, d, (uint64_t)vocab);
    add_tensor(w, &m, &s, "output_norm.weight", GGUF_T_F32, 1, d, 1);
    if (!s.tied) add_tensor(w, &m, &s, "output.weight", s.type, 0, d, (uint64_t)vocab);
    for (int l = 0; l < s.n_layers; l++) {
        static const struct {
            const char *name;
            int norm, in_ffn, out;   /* out: 0 dim, 1 kv dim, 2 ffn */
        } lt[] = {
            {"attn_norm", 1, 0, 0}, {"attn_q", 0, 0, 0},      {"attn_k", 0, 0, 1},
            {"attn_v", 0, 0, 1},    {"attn_output", 0, 0, 0}, {"ffn_norm", 1, 0, 0},
            {"ffn_gate", 0, 0, 2},  {"ffn_up", 0, 0, 2},      {"ffn_down", 0, 1, 0},
        };
        for (size_t k = 0; k < sizeof lt / sizeof lt[0]; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, lt[k].name);
            uint64_t cols = lt[k].in_ffn ? f : d;
            uint64_t rows = lt[k].norm ? 1 : lt[k].out == 0 ? d : lt[k].out == 1 ? kvd : f;
            add_tensor(w, &m, &s, name, lt[k].norm ? GGUF_T_F32 : s.type, lt[k].norm, cols, rows);
        }
    }
    int rc = 0;
    if (m.pool.cap_rows) {
        m.pool.rows = malloc(m.pool.cap_bytes);
        m.pool.valid = malloc(m.pool.cap_rows);
        if (!m.pool.rows || !m.pool.valid) {
            snprintf(err, errlen, "randmodel: out of memory for the row pool");
            rc = -1;
        }
    }
    if (rc == 0) rc = gguf_out_write(w, path, err, errlen);
    gguf_out_free(w);
    free(m.pool.rows);
    free(m.pool.valid);
    free(m.fills);
    free(m.row);
    free(m.qrow);
    return rc;
}
