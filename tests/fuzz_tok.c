/* libFuzzer target for core/tokenizer's encode on a SentencePiece and a byte-level BPE
 * vocabulary (built by `make fuzz`, run by tests/fuzz.sh). The vocabularies come from
 * $CMIF_SHARED/models (default ../shared/models: llama's SPM vocabulary and Llama 3's BPE)
 * and the bundled assets/models/cmif-tiny.gguf; those missing are left out.
 *
 * The first input byte picks the vocabulary and the flags (BOS, special-token parsing), the
 * rest is the text. Every input must encode without error into at most len + 3 ids, all in
 * range; without special tokens no control token comes out of the text, and the pieces
 * decode back to the text (after SentencePiece's added leading space where the vocabulary
 * asks for one; U+2581 left out, which
 * SentencePiece decodes to a space by design). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/tokenizer.h"

#define MAX_VOCABS 4

static struct gguf *g_gguf[MAX_VOCABS];
static struct tokenizer *g_tok[MAX_VOCABS];
static int g_prefix[MAX_VOCABS];   /* SentencePiece's add_space_prefix: " " before the text */
static int g_n;

static void add_vocab(const char *path)
{
    char err[512];
    struct gguf *g;
    struct tokenizer *t;
    if (g_n >= MAX_VOCABS || gguf_open(&g, path, err, sizeof err) != 0) return;
    if (tok_open(&t, g, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_tok: %s: %s\n", path, err);
        gguf_close(g);
        return;
    }
    fprintf(stderr, "fuzz_tok: vocabulary %s (%s, %d tokens)\n", path,
            tok_kind(t) == TOK_SPM ? "SPM" : "BPE", (int)tok_n_vocab(t));
    /* Whether the decoded text starts with an added space, as seen on "a". */
    int32_t ids[8];
    size_t k = 0;
    char d[64];
    size_t dl = 0;
    if (tok_encode(t, "a", 1, 0, 0, ids, 8, &k, err, sizeof err) == 0)
        for (size_t i = 0; i < k; i++) dl += tok_piece(t, ids[i], 0, d + dl, sizeof d - dl);
    g_prefix[g_n] = dl == 2 && d[0] == ' ';
    g_gguf[g_n] = g;
    g_tok[g_n++] = t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *sh = getenv("CMIF_SHARED");
    char p[4096];
    snprintf(p, sizeof p, "%s/models/ggml-vocab-llama-spm.gguf", sh ? sh : "../shared");
    add_vocab(p);
    snprintf(p, sizeof p, "%s/models/llama3-vocab.gguf", sh ? sh : "../shared");
    add_vocab(p);
    add_vocab("assets/models/cmif-tiny.gguf");
    if (!g_n) {
        fprintf(stderr, "fuzz_tok: no vocabulary found (run from the repository root)\n");
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int v = data[0] % g_n;
    const struct tokenizer *t = g_tok[v];
    int add_bos = (data[0] >> 4) & 1, special = (data[0] >> 5) & 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    size_t cap = n + 3;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return 0;
    char err[512];
    size_t k = 0;
    if (tok_encode(t, text, n, add_bos, special, ids, cap, &k, err, sizeof err) != 0) {
        fprintf(stderr, "encode failed: %s\n", err);
        abort();
    }
    if (k > cap) abort();
    int32_t nv = tok_n_vocab(t);
    for (size_t i = 0; i < k; i++)
        if (ids[i] < 0 || ids[i] >= nv) abort();
    if (!special) {
        for (size_t i = 0; i < k; i++)
            if (tok_type(t, ids[i]) == TOK_T_CONTROL && !(add_bos && (i == 0 || i == k - 1)))
                abort();
    }
    if (!special && !add_bos && !memmem(text, n, "\xE2\x96\x81", 3)) {
        size_t dcap = 4 * n + 64, dl = 0;
        char *d = malloc(dcap);
        if (!d) abort();
        for (size_t i = 0; i < k; i++) {
            size_t pl = tok_piece(t, ids[i], 0, d + dl, dcap - dl);
            if (pl > dcap - dl) abort();      /* a decoding longer than 4 bytes a byte */
            dl += pl;
        }
        const char *dd = d;
        if (g_prefix[v] && n > 0) {
            if (dl == 0 || d[0] != ' ') abort();
            dd++;
            dl--;
        }
        if (dl != n || memcmp(dd, text, n) != 0) abort();
        free(d);
    }
    free(ids);
    return 0;
}
