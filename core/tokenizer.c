/* core/tokenizer: SentencePiece-style ("llama") and byte-level BPE ("gpt2") tokenizers over
 * the vocabulary stored in a GGUF file, reproducing llama.cpp's tokenization.
 *
 * Both encoders work on a doubly linked list of symbols and a binary heap of candidate
 * merges, so encoding is O(n log n) in the input length. Token texts are copied out of the
 * GGUF mapping (the tokenizer outlives the file) and indexed by an open-addressing hash. */
#include "core/util.h"
#include "core/tokenizer.h"

#include <pthread.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/gguf.h"
#include "core/tok_unicode.h"

enum { PRE_GPT2 = 0, PRE_LLAMA3 = 1 };

struct tok_slot {
    uint32_t hash;
    int32_t id;             /* -1: empty */
};

struct merge_slot {
    uint64_t key;           /* left id << 32 | right id; UINT64_MAX: empty */
    int32_t rank;
    int32_t result;         /* id of the merged text, -1 when it is not a token */
};

/* End-of-generation tokens, as llama.cpp names them (llama-vocab.cpp, special_eog_ids): any
 * token with one of these texts ends generation, whatever the GGUF says its type is. */
static const char *const eog_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", /* DeepSeek's <｜end▁of▁sentence｜> */
    "[e~[",
};
#define N_EOG_NAMES (sizeof eog_names / sizeof eog_names[0])
/* Every named text, plus EOS, EOT, EOM and the three fill-in-the-middle ids. */
#define TOK_MAX_EOG (N_EOG_NAMES + 6)

struct tokenizer {
    int kind;
    int32_t n_vocab;
    char *arena;            /* every token text, NUL-terminated */
    uint32_t *toff, *tlen;
    float *score;
    uint8_t *type;
    struct tok_slot *slots;
    size_t smask;
    int32_t bos, eos, unk, eot, eom;
    int add_bos, add_eos, add_space_prefix;
    int spm_split;          /* SPM: no token has ▁ after another character (see spm_encode) */
    int32_t byte_tok[256];  /* SPM: <0xXX>; BPE: the token of the byte's GPT-2 character */
    int32_t *special;       /* control/user-defined/unknown tokens, longest text first */
    size_t n_special;
    int32_t eog[TOK_MAX_EOG];
    int n_eog;
    /* BPE */
    int pre;
    int split_digits;       /* every \p{N} is its own word (smollm, starcoder, ...) */
    int ignore_merges;      /* a word that is a token is emitted whole (Llama 3) */
    struct merge_slot *mslots;
    size_t mmask;
    const struct gguf_kv *mkv;      /* the merges (the file outlives the tokenizer) */
    pthread_t mthread;              /* filling mslots while mpending */
    atomic_int mpending;
    pthread_mutex_t mlock;
};

/* Work buffers of an encoding hold the user's text or its token ids: wipe them before they
 * go back to the heap, so raw input never lingers in freed memory. */
static void wipe_free(void *p, size_t n)
{
    if (!p) return;
    sodium_memzero(p, n);
    free(p);
}

/* ---- hashing ---------------------------------------------------------------------- */

#define FNV_BASIS 1469598103934665603ull

/* FNV-1a over s[0..n) from state h: a text's hash can be carried on into a longer one's (the
 * merge table hashes "left", then "left" + "right", in one pass). */
static uint64_t fnv_more(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static uint32_t fnv_end(uint64_t h)
{
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

static uint32_t hash_bytes(const char *s, size_t n) { return fnv_end(fnv_more(FNV_BASIS, s, n)); }

/* The token whose text is s1[0..n1) followed by s2[0..n2) (n2 may be 0), h its hash. */
static int32_t lookup_h2(const struct tokenizer *t, uint32_t h, const char *s1, size_t n1,
                         const char *s2, size_t n2)
{
    for (size_t i = h & t->smask;; i = (i + 1) & t->smask) {
        const struct tok_slot *sl = &t->slots[i];
        if (sl->id < 0) return -1;
        if (sl->hash == h && t->tlen[sl->id] == n1 + n2) {
            const char *tx = t->arena + t->toff[sl->id];
            if (memcmp(tx, s1, n1) == 0 && (n2 == 0 || memcmp(tx + n1, s2, n2) == 0))
                return sl->id;
        }
    }
}

static int32_t lookup(const struct tokenizer *t, const char *s, size_t n)
{
    return lookup_h2(t, hash_bytes(s, n), s, n, NULL, 0);
}

/* Token for a piece of plain text: control and unknown tokens never come out of text
 * (SentencePiece's rule; they enter only through parse_special). */
static int32_t lookup_text(const struct tokenizer *t, const char *s, size_t n)
{
    int32_t id = lookup(t, s, n);
    if (id >= 0 && (t->type[id] == TOK_T_CONTROL || t->type[id] == TOK_T_UNKNOWN)) return -1;
    return id;
}

/* Later duplicates replace earlier ones, as llama.cpp's token_to_id map does. */
static void insert_token(struct tokenizer *t, int32_t id, uint32_t h)
{
    const char *s = t->arena + t->toff[id];
    size_t n = t->tlen[id];
    for (size_t i = h & t->smask;; i = (i + 1) & t->smask) {
        struct tok_slot *sl = &t->slots[i];
        if (sl->id < 0) {
            sl->hash = h;
            sl->id = id;
            return;
        }
        if (sl->hash == h && t->tlen[sl->id] == n && memcmp(t->arena + t->toff[sl->id], s, n) == 0) {
            sl->id = id;
            return;
        }
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void merges_wait(const struct tokenizer *t);

static const struct merge_slot *merge_find(const struct tokenizer *t, int32_t a, int32_t b)
{
    if (!t->mslots || a < 0 || b < 0) return NULL;
    merges_wait(t);
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = mix64(key) & t->mmask;; i = (i + 1) & t->mmask) {
        const struct merge_slot *m = &t->mslots[i];
        if (m->key == UINT64_MAX) return NULL;
        if (m->key == key) return m;
    }
}

/* ---- UTF-8 and Unicode classes ------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when it is not one
 * (overlong, surrogate, beyond U+10FFFF, truncated, stray continuation byte). */
static int utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Code point classes of the pre-tokenizer regexes. F_OTHER marks any in-range code point
 * (punctuation, symbols, marks, unassigned; also undecodable bytes); 0 means "past the end". */
enum { F_L = 1, F_N = 2, F_WS = 4, F_OTHER = 8 };

static int is_space_cp(uint32_t c)
{
    /* Unicode White_Space, the set llama.cpp's \s uses. */
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* The class of c in core/tok_unicode.h's ranges: 1 letter, 2 number, 3 mark, 0 none. */
static int urange_class(uint32_t c)
{
    size_t lo = 0, hi = sizeof tok_uranges / sizeof tok_uranges[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct tok_urange *r = &tok_uranges[mid];
        if (c < r->lo) hi = mid;
        else if (c > (r->hi_cls >> 2)) lo = mid + 1;
        else return (int)(r->hi_cls & 3);
    }
    return 0;
}

static unsigned cp_flags(uint32_t c)
{
    if (is_space_cp(c)) return F_WS;
    if (c < 0x80) {
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return F_L;
        if (c >= '0' && c <= '9') return F_N;
        return F_OTHER;
    }
    int cls = urange_class(c);
    return cls == 1 ? F_L : cls == 2 ? F_N : F_OTHER;
}

size_t tok_utf8_next(const char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    return (size_t)utf8_seq((const uint8_t *)s, n, cp);
}

int tok_cp_class(uint32_t cp)
{
    unsigned f = cp_flags(cp);
    if (f == F_L) return TOK_CP_LETTER;
    if (f == F_N) return TOK_CP_NUMBER;
    if (f == F_WS) return TOK_CP_SPACE;
    if (cp >= 0x80 && urange_class(cp) == 3) return TOK_CP_MARK;
    return TOK_CP_OTHER;
}

/* GPT-2's byte ↔ printable character map: bytes that are printable Latin-1 map to
 * themselves, the other 68 to U+0100.. in byte order. */
static uint32_t gpt2_byte_cp(uint8_t b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    uint32_t n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) n++;
    return 256 + n;
}

/* Inverse of gpt2_byte_cp; -1 for code points outside the map. */
static int gpt2_cp_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    uint32_t n = 0;
    for (int x = 0; x < 256; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) {
            if (256 + n == cp) return x;
            n++;
        }
    return -1;
}

/* ---- open / close ----------------------------------------------------------------- */

static int get_id(const struct gguf *g, const char *key, int32_t n_vocab, int32_t *out, int strict,
                  char *err, size_t errlen)
{
    uint32_t v;
    int r = gguf_get_u32(g, key, &v);
    if (r == -1) return 0;
    if (r == 0 && v < (uint32_t)n_vocab) {
        *out = (int32_t)v;
        return 0;
    }
    if (!strict) {
        *out = -1;
        return 0;
    }
    if (r == -2) util_seterr(err, errlen, "tokenizer: %s has the wrong type (want an unsigned integer)", key);
    else util_seterr(err, errlen, "tokenizer: %s = %u is out of range (vocabulary has %d tokens)", key, v, n_vocab);
    return -1;
}

static int get_flag(const struct gguf *g, const char *key, int *out, char *err, size_t errlen)
{
    int v;
    int r = gguf_get_bool(g, key, &v);
    if (r == -1) return 0;
    if (r != 0)
        return util_seterr(err, errlen, "tokenizer: %s has the wrong type (want a bool)", key);
    *out = v != 0;
    return 0;
}

static int str_is(struct gguf_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const struct tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->tlen[x] != t->tlen[y]) return t->tlen[x] > t->tlen[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void add_eog(struct tokenizer *t, int32_t id)
{
    if (id < 0) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    if (t->n_eog < (int)TOK_MAX_EOG) t->eog[t->n_eog++] = id;
}

static void drop_eog(struct tokenizer *t, int32_t id)
{
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) {
            t->eog[i] = t->eog[--t->n_eog];
            return;
        }
}

/* The id of the first of names (NULL-terminated) the vocabulary has, or -1. */
static int32_t lookup_first(const struct tokenizer *t, const char *const *names)
{
    for (; *names; names++) {
        int32_t id = lookup(t, *names, strlen(*names));
        if (id >= 0) return id;
    }
    return -1;
}

/* A token llama.cpp recognises by its text becomes a control token whatever the file says
 * (so it decodes to "" and plain text never produces it). */
static void force_control(struct tokenizer *t, int32_t id)
{
    if (id >= 0) t->type[id] = TOK_T_CONTROL;
}

/* The end-of-generation set as llama.cpp builds it from the vocabulary: the fill-in-the-
 * middle pad/repo/separator tokens (from the file, or found by text), every token named in
 * eog_names, EOS, EOT and EOM; then its two model-specific exceptions. Runs before the
 * special-token list is built, since it may change token types. */
static int find_eog(struct tokenizer *t, const struct gguf *g, char *err, size_t errlen)
{
    static const char *const fim_pad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
    static const char *const fim_rep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                          "<reponame>", NULL};
    static const char *const fim_sep[] = {"<|file_sep|>", NULL};
    static const char *const fim_key[] = {"tokenizer.ggml.fim_pad_token_id",
                                          "tokenizer.ggml.fim_rep_token_id",
                                          "tokenizer.ggml.fim_sep_token_id"};
    const char *const *fim_names[] = {fim_pad, fim_rep, fim_sep};
    t->n_eog = 0;
    for (int i = 0; i < 3; i++) {
        int32_t id = -1;
        if (get_id(g, fim_key[i], t->n_vocab, &id, 0, err, errlen)) return -1;
        /* llama.cpp takes the first match in hash order when a vocabulary has two of
         * these texts; cmif takes the first listed. */
        if (id < 0) force_control(t, id = lookup_first(t, fim_names[i]));
        add_eog(t, id);
    }
    for (size_t i = 0; i < N_EOG_NAMES; i++) {
        int32_t id = lookup(t, eog_names[i], strlen(eog_names[i]));
        force_control(t, id);
        add_eog(t, id);
    }
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    add_eog(t, t->eom);

    /* gpt-oss and solar-open: <|end|> closes a message, not the generation, when the
     * vocabulary also has <|return|> and <|call|>, or <|calls|> and <|flush|>. */
    int32_t end = lookup(t, "<|end|>", 7);
    int has_call = lookup(t, "<|call|>", 8) >= 0 || lookup(t, "<|calls|>", 9) >= 0;
    if (end >= 0 && has_call && (lookup(t, "<|return|>", 10) >= 0 || lookup(t, "<|flush|>", 9) >= 0)) {
        drop_eog(t, end);
        t->type[end] = TOK_T_USER_DEFINED;
    }
    /* Gemma 4 and PaddleOCR: </s> is plain text when the vocabulary has <|tool_response>. */
    int32_t s_end = lookup(t, "</s>", 4);
    if (s_end >= 0 && lookup(t, "<|tool_response>", 16) >= 0) {
        drop_eog(t, s_end);
        t->type[s_end] = TOK_T_NORMAL;
    }
    return 0;
}

/* The array of strings under key; NULL with "tokenizer: <missing>" when the key is absent,
 * or with a type error. */
static const struct gguf_kv *str_array(const struct gguf *g, const char *key, const char *missing,
                                       char *err, size_t errlen)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) {
        util_seterr(err, errlen, "tokenizer: %s", missing);
        return NULL;
    }
    if (kv->type != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING) {
        util_seterr(err, errlen, "tokenizer: %s is not an array of strings", key);
        return NULL;
    }
    return kv;
}

/* One merge "left right" while the table is built: its halves, their hashes (and the hash of
 * the merged text), then their ids. */
struct merge_in {
    const char *a, *b;
    size_t la, lb;
    uint32_t ha, hb, hab;
    uint64_t key;
};

#define MERGE_BATCH 32
/* Fewer merges than this are put in the table before tok_open returns. */
#define MERGES_ON_THREAD 65536

/* Merge i's halves (the text before and after its first space past the first byte); -1 when
 * it is not "left right". */
static int merge_split(const struct gguf_kv *kv, uint64_t i, struct merge_in *m)
{
    struct gguf_str s;
    if (gguf_arr_str(kv, i, &s) != 0) return -1;
    const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
    if (!sp) return -1;
    m->a = s.ptr;
    m->la = (size_t)(sp - s.ptr);
    m->b = sp + 1;
    m->lb = s.len - m->la - 1;
    return 0;
}

/* Fills the merge table (see load_merges). 280k merges (Llama 3) touch a random slot each, in
 * tables of several MB, so they are taken a batch at a time: every slot a batch will touch is
 * fetched ahead (prefetch), then the batch is inserted in rank order, exactly as one at a
 * time. Reads only what tok_open finished before (token table, file), writes only mslots. */
static void fill_merges(struct tokenizer *t)
{
    const struct gguf_kv *kv = t->mkv;
    uint64_t n = kv->arr_n;
    memset(t->mslots, 0xff, (t->mmask + 1) * sizeof *t->mslots);   /* key UINT64_MAX: empty */
    struct merge_in in[MERGE_BATCH];
    for (uint64_t i0 = 0; i0 < n; i0 += MERGE_BATCH) {
        size_t nb = n - i0 < MERGE_BATCH ? (size_t)(n - i0) : MERGE_BATCH;
        for (size_t k = 0; k < nb; k++) {
            struct merge_in *m = &in[k];
            merge_split(kv, i0 + k, m);      /* checked by load_merges */
            uint64_t ha = fnv_more(FNV_BASIS, m->a, m->la);
            m->ha = fnv_end(ha);
            m->hab = fnv_end(fnv_more(ha, m->b, m->lb));
            m->hb = hash_bytes(m->b, m->lb);
            __builtin_prefetch(&t->slots[m->ha & t->smask]);
            __builtin_prefetch(&t->slots[m->hb & t->smask]);
            __builtin_prefetch(&t->slots[m->hab & t->smask]);
        }
        for (size_t k = 0; k < nb; k++) {
            struct merge_in *m = &in[k];
            int32_t a = lookup_h2(t, m->ha, m->a, m->la, NULL, 0);
            int32_t b = lookup_h2(t, m->hb, m->b, m->lb, NULL, 0);
            /* A merge of non-tokens can never apply. */
            m->key = a < 0 || b < 0 ? UINT64_MAX : (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
            if (m->key != UINT64_MAX) __builtin_prefetch(&t->mslots[mix64(m->key) & t->mmask]);
        }
        for (size_t k = 0; k < nb; k++) {
            const struct merge_in *m = &in[k];
            if (m->key == UINT64_MAX) continue;
            for (size_t j = mix64(m->key) & t->mmask;; j = (j + 1) & t->mmask) {
                struct merge_slot *ms = &t->mslots[j];
                if (ms->key == m->key) break;       /* first (lowest) rank wins */
                if (ms->key == UINT64_MAX) {
                    int32_t r = lookup_h2(t, m->hab, m->a, m->la, m->b, m->lb);
                    ms->key = m->key;
                    ms->rank = (int32_t)(i0 + k);
                    /* Control and unknown tokens never come out of text (lookup_text). */
                    ms->result = r >= 0 && (t->type[r] == TOK_T_CONTROL ||
                                            t->type[r] == TOK_T_UNKNOWN) ? -1 : r;
                    break;
                }
            }
        }
    }
}

static void *fill_merges_thread(void *arg)
{
    fill_merges(arg);
    return NULL;
}

/* The merge table: (left id, right id) -> the lowest rank and the merged token; two-thirds
 * full at most, in huge pages. Every merge is checked here; the table is filled on a thread
 * of its own (its ~50 ms of a Llama 3 start overlap the rest of the start) and waited for by
 * the first encoding (merges_wait). */
static int load_merges(struct tokenizer *t, const struct gguf *g, char *err, size_t errlen)
{
    const struct gguf_kv *kv = str_array(g, "tokenizer.ggml.merges",
                                         "gpt2 vocabulary without tokenizer.ggml.merges", err, errlen);
    if (!kv) return -1;
    uint64_t n = kv->arr_n;
    if (n > (uint64_t)INT32_MAX / 2) {
        util_seterr(err, errlen, "tokenizer: tokenizer.ggml.merges has too many entries (%llu)",
               (unsigned long long)n);
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct merge_in m;
        if (merge_split(kv, i, &m) != 0)
            return util_seterr(err, errlen,
                               "tokenizer: tokenizer.ggml.merges[%llu] is not \"left right\"",
                               (unsigned long long)i);
    }
    size_t cap = 16;
    while (cap < n + n / 2) cap <<= 1;
    t->mslots = util_big_alloc(cap * sizeof *t->mslots);
    if (!t->mslots) {
        util_seterr(err, errlen, "tokenizer: out of memory for %llu merges", (unsigned long long)n);
        return -1;
    }
    t->mmask = cap - 1;
    t->mkv = kv;
    /* Not in a forked child (the decoder's OpenCL probe forks while the table fills): the
     * thread's writes would otherwise copy every page on write, one TLB flush each. The
     * table's pages are its own (util_big_alloc: 2 MiB aligned, a power of two of 2 MiB or
     * more from 65536 merges on). */
    size_t bytes = cap * sizeof *t->mslots;
    long ps = sysconf(_SC_PAGESIZE);
    if (n >= MERGES_ON_THREAD && ps > 0 && bytes % (size_t)ps == 0 &&
        madvise(t->mslots, bytes, MADV_DONTFORK) == 0 &&
        pthread_create(&t->mthread, NULL, fill_merges_thread, t) == 0)
        atomic_store(&t->mpending, 1);
    else
        fill_merges(t);
    return 0;
}

/* Waits for the merge table's thread, once. */
static void merges_wait(const struct tokenizer *tc)
{
    struct tokenizer *t = (struct tokenizer *)tc;   /* the table is complete either way */
    if (!atomic_load(&t->mpending)) return;
    pthread_mutex_lock(&t->mlock);
    if (atomic_load(&t->mpending)) {
        pthread_join(t->mthread, NULL);
        atomic_store(&t->mpending, 0);
    }
    pthread_mutex_unlock(&t->mlock);
}

int tok_open(struct tokenizer **out, const struct gguf *g, char *err, size_t errlen)
{
    *out = NULL;
    struct gguf_str model;
    int r = gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (r == -1) return util_seterr(err, errlen, "tokenizer: missing tokenizer.ggml.model");
    if (r != 0) return util_seterr(err, errlen, "tokenizer: tokenizer.ggml.model is not a string");
    int kind;
    if (str_is(model, "llama")) kind = TOK_SPM;
    else if (str_is(model, "gpt2")) kind = TOK_BPE;
    else {
        util_seterr(err, errlen, "tokenizer: unsupported tokenizer.ggml.model '%.*s' (want llama or gpt2)",
               (int)(model.len > 64 ? 64 : model.len), model.ptr);
        return -1;
    }
    const struct gguf_kv *ktok = str_array(g, "tokenizer.ggml.tokens",
                                           "missing tokenizer.ggml.tokens", err, errlen);
    if (!ktok) return -1;
    if (ktok->arr_n == 0 || ktok->arr_n > (1u << 24)) {
        util_seterr(err, errlen, "tokenizer: tokenizer.ggml.tokens has %llu entries (want 1..16777216)",
               (unsigned long long)ktok->arr_n);
        return -1;
    }
    int32_t n = (int32_t)ktok->arr_n;
    const struct gguf_kv *kscore = gguf_find(g, "tokenizer.ggml.scores");
    const struct gguf_kv *ktype = gguf_find(g, "tokenizer.ggml.token_type");
    if (kscore && (kscore->type != GGUF_VT_ARRAY || kscore->arr_n != (uint64_t)n)) {
        util_seterr(err, errlen, "tokenizer: tokenizer.ggml.scores is not an array of %d numbers", n);
        return -1;
    }
    if (ktype && (ktype->type != GGUF_VT_ARRAY || ktype->arr_n != (uint64_t)n)) {
        util_seterr(err, errlen, "tokenizer: tokenizer.ggml.token_type is not an array of %d integers", n);
        return -1;
    }
    if (kind == TOK_SPM && !kscore) {
        util_seterr(err, errlen, "tokenizer: llama vocabulary without tokenizer.ggml.scores");
        return -1;
    }

    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) return util_seterr(err, errlen, "tokenizer: out of memory");
    pthread_mutex_init(&t->mlock, NULL);
    t->kind = kind;
    t->n_vocab = n;
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap <<= 1;
    t->toff = malloc((size_t)n * sizeof *t->toff);
    t->tlen = malloc((size_t)n * sizeof *t->tlen);
    t->score = calloc((size_t)n, sizeof *t->score);
    t->type = malloc((size_t)n);
    t->slots = util_big_alloc(cap * sizeof *t->slots);
    if (!t->toff || !t->tlen || !t->score || !t->type || !t->slots) {
        util_seterr(err, errlen, "tokenizer: out of memory for %d tokens", n);
        goto fail;
    }
    t->smask = cap - 1;
    memset(t->slots, 0xff, cap * sizeof *t->slots);    /* id -1: empty */

    /* Texts lie inside the validated file, so their total is bounded by its size. */
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        struct gguf_str s;
        if (gguf_arr_str(ktok, (uint64_t)i, &s) != 0) {
            util_seterr(err, errlen, "tokenizer: tokenizer.ggml.tokens[%d] unreadable", i);
            goto fail;
        }
        if (s.len > UINT32_MAX / 2 || total + s.len + 1 > UINT32_MAX) {
            util_seterr(err, errlen, "tokenizer: tokenizer.ggml.tokens[%d] too long", i);
            goto fail;
        }
        t->toff[i] = (uint32_t)total;
        t->tlen[i] = (uint32_t)s.len;
        total += s.len + 1;
    }
    t->arena = malloc(total);
    if (!t->arena) {
        util_seterr(err, errlen, "tokenizer: out of memory for %zu bytes of token text", total);
        goto fail;
    }
    for (int32_t i = 0; i < n; i++) {
        struct gguf_str s;
        gguf_arr_str(ktok, (uint64_t)i, &s);
        if (s.len) memcpy(t->arena + t->toff[i], s.ptr, s.len);
        t->arena[t->toff[i] + s.len] = 0;
        if (kscore && gguf_arr_f32(kscore, (uint64_t)i, &t->score[i]) != 0) {
            util_seterr(err, errlen, "tokenizer: tokenizer.ggml.scores[%d] is not a float", i);
            goto fail;
        }
        int32_t ty = TOK_T_NORMAL;
        if (ktype && gguf_arr_i32(ktype, (uint64_t)i, &ty) != 0) {
            util_seterr(err, errlen, "tokenizer: tokenizer.ggml.token_type[%d] is not an integer", i);
            goto fail;
        }
        if (ty < TOK_T_UNDEFINED || ty > TOK_T_BYTE) {
            util_seterr(err, errlen, "tokenizer: tokenizer.ggml.token_type[%d] = %d is not a token type", i, ty);
            goto fail;
        }
        t->type[i] = (uint8_t)ty;
    }
    /* Into the hash table a batch at a time, each batch's slots fetched ahead (a random slot
     * of a 2 MB table per token), in id order as one at a time. */
    for (int32_t i0 = 0; i0 < n; i0 += MERGE_BATCH) {
        uint32_t h[MERGE_BATCH];
        int32_t nb = n - i0 < MERGE_BATCH ? n - i0 : MERGE_BATCH;
        for (int32_t k = 0; k < nb; k++) {
            h[k] = hash_bytes(t->arena + t->toff[i0 + k], t->tlen[i0 + k]);
            __builtin_prefetch(&t->slots[h[k] & t->smask]);
        }
        for (int32_t k = 0; k < nb; k++) insert_token(t, i0 + k, h[k]);
    }

    if (kind == TOK_SPM) {
        t->spm_split = 1;
        for (int32_t i = 0; i < n && t->spm_split; i++) {
            const char *tx = t->arena + t->toff[i];
            size_t tl = t->tlen[i];
            for (size_t p = 1; p + 3 <= tl; p++)
                if (memcmp(tx + p, "\xE2\x96\x81", 3) == 0 &&
                    (p < 3 || memcmp(tx + p - 3, "\xE2\x96\x81", 3) != 0)) {
                    t->spm_split = 0;
                    break;
                }
        }
    }

    /* Special ids: llama.cpp's defaults for SPM, none for BPE unless the file names them. */
    t->bos = t->eos = t->unk = t->eot = t->eom = -1;
    if (kind == TOK_SPM) {
        if (n > 0) t->unk = 0;
        if (n > 1) t->bos = 1;
        if (n > 2) t->eos = 2;
    }
    if (get_id(g, "tokenizer.ggml.bos_token_id", n, &t->bos, 1, err, errlen) ||
        get_id(g, "tokenizer.ggml.eos_token_id", n, &t->eos, 1, err, errlen) ||
        get_id(g, "tokenizer.ggml.unknown_token_id", n, &t->unk, 1, err, errlen) ||
        get_id(g, "tokenizer.ggml.eot_token_id", n, &t->eot, 0, err, errlen) ||
        get_id(g, "tokenizer.ggml.eom_token_id", n, &t->eom, 0, err, errlen))
        goto fail;
    if (!ktype) {
        /* Without types, at least keep BOS/EOS/UNK out of decoded text. */
        int32_t sp[3] = {t->bos, t->eos, t->unk};
        for (int i = 0; i < 3; i++)
            if (sp[i] >= 0) t->type[sp[i]] = sp[i] == t->unk ? TOK_T_UNKNOWN : TOK_T_CONTROL;
    }

    t->pre = PRE_GPT2;
    if (kind == TOK_BPE) {
        struct gguf_str pre = {"", 0};
        r = gguf_get_str(g, "tokenizer.ggml.pre", &pre);
        if (r == -2) {
            util_seterr(err, errlen, "tokenizer: tokenizer.ggml.pre is not a string");
            goto fail;
        }
        if (str_is(pre, "llama-bpe") || str_is(pre, "llama3") || str_is(pre, "llama-v3")) {
            t->pre = PRE_LLAMA3;
            t->ignore_merges = 1;
        } else if (str_is(pre, "smaug-bpe")) {
            t->pre = PRE_LLAMA3;
        } else if (str_is(pre, "smollm") || str_is(pre, "starcoder") || str_is(pre, "refact")) {
            t->split_digits = 1;
        }
    }
    t->add_bos = kind == TOK_SPM || t->pre == PRE_LLAMA3;
    t->add_eos = 0;
    t->add_space_prefix = kind == TOK_SPM;
    if (get_flag(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err, errlen) ||
        get_flag(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err, errlen) ||
        get_flag(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err, errlen))
        goto fail;
    if (kind == TOK_BPE) t->add_space_prefix = 0;
    if (t->bos < 0) t->add_bos = 0;
    if (t->eos < 0) t->add_eos = 0;

    for (int b = 0; b < 256; b++) {
        char buf[8];
        int32_t id;
        if (kind == TOK_SPM) {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            id = lookup(t, buf, 6);
            if (id < 0) {
                buf[0] = (char)b;
                id = lookup(t, buf, 1);
            }
        } else {
            id = lookup(t, buf, utf8_put(gpt2_byte_cp((uint8_t)b), buf));
        }
        t->byte_tok[b] = id;
    }

    if (find_eog(t, g, err, errlen) != 0) goto fail;

    size_t ns = 0;
    for (int32_t i = 0; i < n; i++)
        if ((t->type[i] == TOK_T_CONTROL || t->type[i] == TOK_T_USER_DEFINED ||
             t->type[i] == TOK_T_UNKNOWN) && t->tlen[i] > 0)
            ns++;
    if (ns) {
        t->special = malloc(ns * sizeof *t->special);
        if (!t->special) {
            util_seterr(err, errlen, "tokenizer: out of memory");
            goto fail;
        }
        for (int32_t i = 0; i < n; i++)
            if ((t->type[i] == TOK_T_CONTROL || t->type[i] == TOK_T_USER_DEFINED ||
                 t->type[i] == TOK_T_UNKNOWN) && t->tlen[i] > 0)
                t->special[t->n_special++] = i;
        qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);
    }

    if (kind == TOK_BPE && load_merges(t, g, err, errlen) != 0) goto fail;
    *out = t;
    return 0;
fail:
    tok_close(t);
    return -1;
}

void tok_close(struct tokenizer *t)
{
    if (!t) return;
    merges_wait(t);
    pthread_mutex_destroy(&t->mlock);
    UTIL_FREE(t->arena, t->toff, t->tlen, t->score, t->type, t->slots, t->special, t->mslots, t);
}

/* ---- encoding: shared pieces -------------------------------------------------------- */

struct out {
    int32_t *ids;
    size_t n, max;
    int overflow;
};

static void emit(struct out *o, int32_t id)
{
    if (o->n < o->max) o->ids[o->n++] = id;
    else o->overflow = 1;
}

struct sym {
    int32_t prev, next;
    uint32_t off, n;        /* bytes of the working buffer */
    int32_t id;             /* token of the symbol's text; -1 when not (yet) known */
};

struct cand {
    float score;            /* SPM: higher first */
    int32_t rank;           /* BPE: lower first */
    int32_t left, right;
    uint32_t size;
    int32_t id;
};

struct heap {
    struct cand *a;
    size_t n;
    int bpe;
};

/* a comes out before b */
static int cand_before(const struct heap *h, const struct cand *a, const struct cand *b)
{
    if (h->bpe) {
        if (a->rank != b->rank) return a->rank < b->rank;
    } else if (a->score != b->score) {
        return a->score > b->score;
    }
    return a->left < b->left;
}

/* The heap array is sized for every push an encoding can make (see callers). */
static void heap_push(struct heap *h, struct cand c)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(h, &c, &h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = c;
}

static struct cand heap_pop(struct heap *h)
{
    struct cand top = h->a[0];
    struct cand last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, best;
        if (l >= h->n) break;
        best = l;
        if (l + 1 < h->n && cand_before(h, &h->a[l + 1], &h->a[l])) best = l + 1;
        if (!cand_before(h, &h->a[best], &last)) break;
        h->a[i] = h->a[best];
        i = best;
    }
    if (h->n) h->a[i] = last;
    return top;
}

/* ---- SentencePiece ------------------------------------------------------------------ */

static int is_sp_sym(const char *buf, const struct sym *y)
{
    return y->n == 3 && memcmp(buf + y->off, "\xE2\x96\x81", 3) == 0;
}

static void spm_try_pair(const struct tokenizer *t, const char *buf, struct sym *s, struct heap *h,
                         int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return;
    uint32_t size = s[l].n + s[r].n;
    int32_t id = lookup_text(t, buf + s[l].off, size);
    if (id < 0) return;
    struct cand c = {t->score[id], 0, l, r, size, id};
    heap_push(h, c);
}

static void emit_bytes(const struct tokenizer *t, const char *p, size_t n, struct out *o)
{
    for (size_t j = 0; j < n; j++) {
        int32_t b = t->byte_tok[(uint8_t)p[j]];
        if (b < 0) b = t->unk;
        if (b >= 0) emit(o, b);
    }
}

static int spm_encode(const struct tokenizer *t, const char *text, size_t len, int prefix,
                      struct out *o, char *err, size_t errlen)
{
    if (len > (SIZE_MAX - 3) / 3 || len > (UINT32_MAX - 3) / 3)
        return util_seterr(err, errlen, "tokenizer: input too long (%zu bytes)", len);
    /* Escape spaces as U+2581 and add the leading one. */
    size_t cap = 3 * len + 3;
    char *buf = malloc(cap);
    struct sym *s = malloc((cap) * sizeof *s);
    struct heap h = {malloc(3 * cap * sizeof *h.a), 0, 0};
    if (!buf || !s || !h.a) {
        wipe_free(buf, cap);
        wipe_free(s, cap * sizeof *s);
        wipe_free(h.a, 3 * cap * sizeof *h.a);
        util_seterr(err, errlen, "tokenizer: out of memory encoding %zu bytes", len);
        return -1;
    }
    size_t bl = 0;
    if (prefix) {
        memcpy(buf, "\xE2\x96\x81", 3);
        bl = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + bl, "\xE2\x96\x81", 3);
            bl += 3;
        } else {
            buf[bl++] = text[i];
        }
    }
    int32_t ns = 0;
    for (size_t off = 0; off < bl;) {
        uint32_t cp;
        int l = utf8_seq((const uint8_t *)buf + off, bl - off, &cp);
        if (l == 0) l = 1;
        s[ns].off = (uint32_t)off;
        s[ns].n = (uint32_t)l;
        s[ns].id = -1;
        ns++;
        off += (size_t)l;
    }
    /* When no token has ▁ after another character, no merge can span the point where a
     * ▁ follows a non-▁: each such segment is merged on its own, which gives the same
     * result as one pass over the whole text but keeps the heap small and in cache. */
    for (int32_t seg = 0; seg < ns;) {
        int32_t end = seg + 1;
        if (t->spm_split)
            while (end < ns && !(is_sp_sym(buf, &s[end]) && !is_sp_sym(buf, &s[end - 1]))) end++;
        else
            end = ns;
        for (int32_t i = seg; i < end; i++) {
            s[i].prev = i == seg ? -1 : i - 1;
            s[i].next = i + 1 == end ? -1 : i + 1;
        }
        h.n = 0;
        for (int32_t i = seg + 1; i < end; i++) spm_try_pair(t, buf, s, &h, i - 1, i);
        while (h.n) {
            struct cand c = heap_pop(&h);
            struct sym *L = &s[c.left], *R = &s[c.right];
            if (L->n == 0 || R->n == 0 || L->n + R->n != c.size) continue;  /* stale */
            L->n += R->n;
            L->id = c.id;
            R->n = 0;
            L->next = R->next;
            if (R->next >= 0) s[R->next].prev = c.left;
            spm_try_pair(t, buf, s, &h, L->prev, c.left);
            spm_try_pair(t, buf, s, &h, c.left, L->next);
        }
        for (int32_t i = seg; i >= 0; i = s[i].next) {
            int32_t id = s[i].id >= 0 ? s[i].id : lookup_text(t, buf + s[i].off, s[i].n);
            if (id >= 0) emit(o, id);
            else emit_bytes(t, buf + s[i].off, s[i].n, o);  /* byte fallback */
        }
        seg = end;
    }
    wipe_free(buf, cap);
    wipe_free(s, cap * sizeof *s);
    wipe_free(h.a, 3 * cap * sizeof *h.a);
    return 0;
}

/* ---- byte-level BPE ----------------------------------------------------------------- */

struct unit {
    uint32_t cp;            /* code point; 0xFFFD for an undecodable byte */
    uint32_t off;           /* byte offset in the fragment */
    uint8_t fl;
};

#define OOR 0xFFFFFFFFu

struct splitter {
    const struct unit *u;
    size_t end, prev;       /* [.., end) is the range; prev: end of the last word */
    size_t *words;          /* word end positions (unit indices) */
    size_t nw;
};

static unsigned sp_fl(const struct splitter *sp, size_t i) { return i < sp->end ? sp->u[i].fl : 0; }
static uint32_t sp_cp(const struct splitter *sp, size_t i) { return i < sp->end ? sp->u[i].cp : OOR; }

static size_t sp_word(struct splitter *sp, size_t end)
{
    size_t n = end - sp->prev;
    if (n) sp->words[sp->nw++] = end;
    sp->prev = end;
    return n;
}

static uint32_t lower_ascii(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's 't 're 've 'm 'll 'd (case-insensitive for Llama 3): length matched at pos, or 0. */
static size_t contraction(const struct splitter *sp, size_t pos, int icase)
{
    if (sp_cp(sp, pos) != '\'' || pos + 1 >= sp->end) return 0;
    uint32_t a = sp_cp(sp, pos + 1);
    if (icase) a = lower_ascii(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= sp->end) return 0;
    uint32_t b = sp_cp(sp, pos + 2);
    if (icase) b = lower_ascii(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(struct splitter *sp, size_t pos)
{
    while (pos < sp->end) {
        uint32_t c = sp_cp(sp, pos);
        unsigned f = sp_fl(sp, pos);
        size_t k = contraction(sp, pos, 1);
        if (k) {
            pos += sp_word(sp, pos + k);
            continue;
        }
        if (!(c == '\r' || c == '\n' || (f & F_N)) && ((f & F_L) || (sp_fl(sp, pos + 1) & F_L))) {
            pos++;
            while (sp_fl(sp, pos) & F_L) pos++;
            sp_word(sp, pos);
            continue;
        }
        if (f & F_N) {
            size_t ini = pos;
            while (sp_fl(sp, pos) & F_N) {
                if (++pos - ini >= 3) {
                    sp_word(sp, pos);
                    ini = pos;
                }
            }
            sp_word(sp, pos);
            continue;
        }
        unsigned f2 = c == ' ' ? sp_fl(sp, pos + 1) : f;
        if (f2 & F_OTHER) {
            pos += c == ' ';
            while (sp_fl(sp, pos) & F_OTHER) pos++;
            while (sp_cp(sp, pos) == '\r' || sp_cp(sp, pos) == '\n') pos++;
            sp_word(sp, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (sp_fl(sp, pos + nws) & F_WS) {
            uint32_t c2 = sp_cp(sp, pos + nws);
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn) {                                  /* \s*[\r\n]+ */
            pos = last_rn;
            sp_word(sp, pos);
            continue;
        }
        if (nws > 1 && sp_cp(sp, pos + nws) != OOR) {   /* \s+(?!\S) */
            pos += nws - 1;
            sp_word(sp, pos);
            continue;
        }
        if (nws) {                                      /* \s+ */
            pos += nws;
            sp_word(sp, pos);
            continue;
        }
        sp_word(sp, ++pos);
    }
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(struct splitter *sp, size_t pos)
{
    while (pos < sp->end) {
        uint32_t c = sp_cp(sp, pos);
        size_t k = contraction(sp, pos, 0);
        if (k) {
            pos += sp_word(sp, pos + k);
            continue;
        }
        unsigned f2 = c == ' ' ? sp_fl(sp, pos + 1) : sp_fl(sp, pos);
        unsigned cls = f2 & (F_L | F_N | F_OTHER);
        if (cls && !(f2 & F_WS)) {
            pos += c == ' ';
            while (sp_fl(sp, pos) & cls) pos++;
            sp_word(sp, pos);
            continue;
        }
        size_t nws = 0;
        while (sp_fl(sp, pos + nws) & F_WS) nws++;
        if (nws > 1 && sp_cp(sp, pos + nws) != OOR) {
            pos += nws - 1;
            sp_word(sp, pos);
            continue;
        }
        if (nws) {
            pos += nws;
            sp_word(sp, pos);
            continue;
        }
        sp_word(sp, ++pos);
    }
}

/* Merge one pre-tokenized word (bytes p[0..n)) and emit its tokens. */
static void bpe_word(const struct tokenizer *t, const uint8_t *p, size_t n, struct sym *s,
                     struct heap *h, char *mapped, struct out *o)
{
    if (t->ignore_merges) {
        size_t ml = 0;
        for (size_t i = 0; i < n; i++) ml += utf8_put(gpt2_byte_cp(p[i]), mapped + ml);
        int32_t id = lookup_text(t, mapped, ml);
        if (id >= 0) {
            emit(o, id);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        s[i].prev = (int32_t)i - 1;
        s[i].next = i + 1 == n ? -1 : (int32_t)i + 1;
        s[i].off = (uint32_t)i;
        s[i].n = 1;
        s[i].id = t->byte_tok[p[i]];
    }
    h->n = 0;
    for (size_t i = 1; i < n; i++) {
        const struct merge_slot *m = merge_find(t, s[i - 1].id, s[i].id);
        if (m) heap_push(h, (struct cand){0, m->rank, (int32_t)i - 1, (int32_t)i, 2, m->result});
    }
    while (h->n) {
        struct cand c = heap_pop(h);
        struct sym *L = &s[c.left], *R = &s[c.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != c.size) continue;
        L->n += R->n;
        L->id = c.id;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) s[R->next].prev = c.left;
        const struct merge_slot *m;
        if (L->prev >= 0 && (m = merge_find(t, s[L->prev].id, L->id)))
            heap_push(h, (struct cand){0, m->rank, L->prev, c.left, s[L->prev].n + L->n, m->result});
        if (L->next >= 0 && (m = merge_find(t, L->id, s[L->next].id)))
            heap_push(h, (struct cand){0, m->rank, c.left, L->next, L->n + s[L->next].n, m->result});
    }
    for (int32_t i = n ? 0 : -1; i >= 0; i = s[i].next) {
        if (s[i].id >= 0) emit(o, s[i].id);
        else emit_bytes(t, (const char *)p + s[i].off, s[i].n, o);
    }
}

static int bpe_encode(const struct tokenizer *t, const char *text, size_t len, struct out *o,
                      char *err, size_t errlen)
{
    if (len > UINT32_MAX / 4)
        return util_seterr(err, errlen, "tokenizer: input too long (%zu bytes)", len);
    struct unit *u = malloc((len + 1) * sizeof *u);
    size_t *words = malloc((len + 1) * sizeof *words);
    struct sym *s = malloc((len + 1) * sizeof *s);
    struct heap h = {malloc((3 * len + 1) * sizeof *h.a), 0, 1};
    char *mapped = malloc(2 * len + 1);
    if (!u || !words || !s || !h.a || !mapped) {
        wipe_free(u, (len + 1) * sizeof *u);
        wipe_free(words, (len + 1) * sizeof *words);
        wipe_free(s, (len + 1) * sizeof *s);
        wipe_free(h.a, (3 * len + 1) * sizeof *h.a);
        wipe_free(mapped, 2 * len + 1);
        util_seterr(err, errlen, "tokenizer: out of memory encoding %zu bytes", len);
        return -1;
    }
    size_t nu = 0;
    for (size_t off = 0; off < len;) {
        uint32_t cp;
        int l = utf8_seq((const uint8_t *)text + off, len - off, &cp);
        if (l == 0) {
            l = 1;
            cp = 0xFFFD;  /* like llama.cpp, but the original byte is kept */
        }
        u[nu].cp = cp;
        u[nu].off = (uint32_t)off;
        u[nu].fl = (uint8_t)(l == 1 && cp == 0xFFFD ? F_OTHER : cp_flags(cp));
        nu++;
        off += (size_t)l;
    }
    u[nu].off = (uint32_t)len;

    struct splitter sp = {u, nu, 0, words, 0};
    if (t->pre == PRE_LLAMA3) {
        split_llama3(&sp, 0);
    } else if (!t->split_digits) {
        split_gpt2(&sp, 0);
    } else {
        /* \p{N} first (each digit a word), then the GPT-2 split of the gaps. */
        size_t pos = 0;
        while (pos < nu) {
            if (u[pos].fl & F_N) {
                sp_word(&sp, ++pos);
                continue;
            }
            size_t e = pos;
            while (e < nu && !(u[e].fl & F_N)) e++;
            sp.end = e;
            split_gpt2(&sp, pos);
            sp.end = nu;
            pos = e;
        }
    }
    size_t start = 0;
    for (size_t w = 0; w < sp.nw; w++) {
        size_t b0 = u[start].off, b1 = u[words[w]].off;
        bpe_word(t, (const uint8_t *)text + b0, b1 - b0, s, &h, mapped, o);
        start = words[w];
    }
    wipe_free(u, (len + 1) * sizeof *u);
    wipe_free(words, (len + 1) * sizeof *words);
    wipe_free(s, (len + 1) * sizeof *s);
    wipe_free(h.a, (3 * len + 1) * sizeof *h.a);
    wipe_free(mapped, 2 * len + 1);
    return 0;
}

/* ---- special tokens and the public entry -------------------------------------------- */

struct frag {
    size_t off, len;
    int32_t id;             /* -1: raw text */
};

struct frags {
    struct frag *v;
    size_t n, cap;
};

static int frag_push(struct frags *f, size_t off, size_t len, int32_t id)
{
    if (f->n == f->cap) {
        size_t nc = f->cap ? 2 * f->cap : 16;
        struct frag *nv = malloc(nc * sizeof *nv);  /* not realloc: the old block is wiped */
        if (!nv) return -1;
        if (f->n) memcpy(nv, f->v, f->n * sizeof *nv);
        wipe_free(f->v, f->cap * sizeof *f->v);
        f->v = nv;
        f->cap = nc;
    }
    f->v[f->n++] = (struct frag){off, len, id};
    return 0;
}

/* Split the raw text at occurrences of special token texts, longest token first (as
 * llama.cpp does). Each token's pass rebuilds the list, so many occurrences stay linear.
 * Returns the fragment count, or (size_t)-1 on allocation failure. */
static size_t partition(const struct tokenizer *t, const char *text, size_t len, int parse_special,
                        struct frag **out, size_t *out_cap)
{
    struct frags cur = {NULL, 0, 0}, nxt = {NULL, 0, 0};
    if (frag_push(&cur, 0, len, -1)) return (size_t)-1;
    for (size_t k = 0; parse_special && k < t->n_special; k++) {
        int32_t id = t->special[k];
        const char *tx = t->arena + t->toff[id];
        size_t tl = t->tlen[id];
        int hit_any = 0;
        nxt.n = 0;
        for (size_t i = 0; i < cur.n; i++) {
            struct frag f = cur.v[i];
            const char *hit = NULL;
            if (f.id < 0 && f.len >= tl) hit = memmem(text + f.off, f.len, tx, tl);
            if (!hit) {
                if (frag_push(&nxt, f.off, f.len, f.id)) goto oom;
                continue;
            }
            hit_any = 1;
            size_t off = f.off, end = f.off + f.len;
            while (hit) {
                size_t at = (size_t)(hit - text);
                if (at > off && frag_push(&nxt, off, at - off, -1)) goto oom;
                if (frag_push(&nxt, at, tl, id)) goto oom;
                off = at + tl;
                hit = end - off >= tl ? memmem(text + off, end - off, tx, tl) : NULL;
            }
            if (off < end && frag_push(&nxt, off, end - off, -1)) goto oom;
        }
        if (hit_any) {
            struct frags tmp = cur;
            cur = nxt;
            nxt = tmp;
        }
    }
    wipe_free(nxt.v, nxt.cap * sizeof *nxt.v);
    *out = cur.v;
    *out_cap = cur.cap;
    return cur.n;
oom:
    wipe_free(cur.v, cur.cap * sizeof *cur.v);
    wipe_free(nxt.v, nxt.cap * sizeof *nxt.v);
    return (size_t)-1;
}

int tok_encode(const struct tokenizer *t, const char *text, size_t len, int add_bos,
               int parse_special, int32_t *ids, size_t max_ids, size_t *n_out, char *err,
               size_t errlen)
{
    *n_out = 0;
    if (!text && len) return util_seterr(err, errlen, "tokenizer: NULL text");
    struct out o = {ids, 0, max_ids, 0};
    if (add_bos && t->bos >= 0) emit(&o, t->bos);
    struct frag *f = NULL;
    size_t nf = 0, fcap = 0;
    if (len) {
        nf = partition(t, text, len, parse_special, &f, &fcap);
        if (nf == (size_t)-1) return util_seterr(err, errlen, "tokenizer: out of memory");
    }
    int prev_special = 1;  /* SPM: a text fragment at the start or after a token gets ▁ */
    for (size_t i = 0; i < nf && !o.overflow; i++) {
        if (f[i].id >= 0) {
            emit(&o, f[i].id);
            prev_special = 1;
            continue;
        }
        int r = t->kind == TOK_SPM
                    ? spm_encode(t, text + f[i].off, f[i].len, t->add_space_prefix && prev_special,
                                 &o, err, errlen)
                    : bpe_encode(t, text + f[i].off, f[i].len, &o, err, errlen);
        if (r != 0) {
            wipe_free(f, fcap * sizeof *f);
            return -1;
        }
        prev_special = 0;
    }
    wipe_free(f, fcap * sizeof *f);
    if (add_bos && t->add_eos && t->eos >= 0) emit(&o, t->eos);
    if (o.overflow) return util_seterr(err, errlen, "tokenizer: more than %zu tokens", max_ids);
    *n_out = o.n;
    return 0;
}

/* ---- decoding and queries ------------------------------------------------------------- */

static size_t put(char *buf, size_t cap, size_t at, const char *s, size_t n)
{
    if (at < cap) memcpy(buf + at, s, at + n <= cap ? n : cap - at);
    return at + n;
}

size_t tok_piece(const struct tokenizer *t, int32_t id, int show_special, char *buf, size_t cap)
{
    if (id < 0 || id >= t->n_vocab) return 0;
    const char *tx = t->arena + t->toff[id];
    size_t tl = t->tlen[id], n = 0;
    int ty = t->type[id];
    if (ty == TOK_T_CONTROL || ty == TOK_T_UNKNOWN) {
        if (show_special) n = put(buf, cap, 0, tx, tl);
    } else if (ty == TOK_T_USER_DEFINED) {
        n = put(buf, cap, 0, tx, tl);
    } else if (ty == TOK_T_BYTE && t->kind == TOK_SPM) {
        unsigned v;
        char c = 0;
        if (tl == 6 && sscanf(tx, "<0x%2x>", &v) == 1) c = (char)v;
        n = put(buf, cap, 0, &c, 1);
    } else if (ty == TOK_T_NORMAL || ty == TOK_T_BYTE) {  /* unused/undefined: "" */
        for (size_t i = 0; i < tl;) {
            uint32_t cp;
            int l = utf8_seq((const uint8_t *)tx + i, tl - i, &cp);
            if (l == 0) {
                n = put(buf, cap, n, tx + i, 1);
                i++;
                continue;
            }
            if (t->kind == TOK_SPM) {
                if (cp == 0x2581) n = put(buf, cap, n, " ", 1);
                else n = put(buf, cap, n, tx + i, (size_t)l);
            } else {
                int b = gpt2_cp_byte(cp);
                if (b >= 0) {
                    char c = (char)b;
                    n = put(buf, cap, n, &c, 1);
                } else {
                    n = put(buf, cap, n, tx + i, (size_t)l);
                }
            }
            i += (size_t)l;
        }
    }
    if (n < cap) buf[n] = 0;
    return n;
}

const char *tok_text(const struct tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return "";
    }
    if (len) *len = t->tlen[id];
    return t->arena + t->toff[id];
}

size_t tok_piece_after(const struct tokenizer *t, int32_t prev, int32_t id, int show_special,
                       char *buf, size_t cap)
{
    size_t n = tok_piece(t, id, show_special, buf, cap);
    if (t->kind != TOK_SPM || prev < 0 || prev != t->bos || n == 0 || cap == 0 || buf[0] != ' ')
        return n;
    size_t have = n < cap ? n : cap;
    memmove(buf, buf + 1, have - 1);
    buf[have - 1] = '\0';
    return n - 1;
}

int tok_kind(const struct tokenizer *t) { return t->kind; }
int32_t tok_n_vocab(const struct tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const struct tokenizer *t) { return t->bos; }
int32_t tok_eos(const struct tokenizer *t) { return t->eos; }
int tok_add_bos(const struct tokenizer *t) { return t->add_bos; }

int tok_type(const struct tokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->n_vocab) return TOK_T_UNDEFINED;
    return t->type[id];
}

int tok_is_eog(const struct tokenizer *t, int32_t id)
{
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return 1;
    return 0;
}

int32_t tok_find(const struct tokenizer *t, const char *s, size_t len)
{
    return lookup(t, s, len);
}
