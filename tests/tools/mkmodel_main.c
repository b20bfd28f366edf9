/* mkmodel: writes a random-weight Llama GGUF model (tests/tools/randmodel) from the command
 * line, for benchmarks and manual testing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "core/gguf.h"
#include "tests/tools/randmodel.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mkmodel OUT.gguf [--preset tiny|110m|1.1b|llama32-1b] [--dim N] [--layers N]\n"
            "               [--heads N] [--kv-heads N] [--ffn N] [--vocab N] [--ctx N]\n"
            "               [--type T] [--embd-type T] [--tied] [--rope-base F] [--seed N]\n"
            "               [--tokenizer-from FILE] [--add-token TEXT]... [--chat-template FILE]\n"
            "               [--boost-token ID] [--no-add-bos]\n"
            "  T: f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k q4_1 q5_0 q5_1 q2_k q3_k iq4_nl iq4_xs\n"
            "  presets: tiny (dim 64, 2 layers), 110m (llama2.c stories110M shape),\n"
            "           1.1b (TinyLlama: dim 2048, 22 layers, ffn 5632, 32/4 heads, vocab 32000),\n"
            "           llama32-1b (Llama-3.2-1B: dim 2048, 16 layers, ffn 8192, 32/8 heads,\n"
            "           vocab 128256, rope base 500000, Q4_K with a tied Q6_K token_embd)\n"
            "  --boost-token: that token's output row x100, so greedy decoding soon picks it.\n"
            "  --no-add-bos: the synthetic vocabulary's add_bos_token is false (as SmolLM2's).\n"
            "  --vocab N larger than --tokenizer-from's vocabulary appends control tokens up to N:\n"
            "  the --add-token texts first, then [control_K] (the K-th appended token).\n"
            "  Options after --preset override it.\n");
}

static int parse_type(const char *s)
{
    static const char *const names[] = {"f32",  "f16",  "bf16", "q8_0", "q4_0",   "q4_k",  "q5_k", "q6_k",
                                        "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "iq4_nl", "iq4_xs"};
    static const int types[] = {GGUF_T_F32,  GGUF_T_F16,  GGUF_T_BF16, GGUF_T_Q8_0, GGUF_T_Q4_0,
                                GGUF_T_Q4_K, GGUF_T_Q5_K, GGUF_T_Q6_K, GGUF_T_Q4_1, GGUF_T_Q5_0,
                                GGUF_T_Q5_1, GGUF_T_Q2_K, GGUF_T_Q3_K, GGUF_T_IQ4_NL, GGUF_T_IQ4_XS};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i])) return types[i];
    return -1;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int preset(struct randmodel_spec *s, const char *name)
{
    randmodel_defaults(s);
    if (!strcmp(name, "tiny")) return 0;
    if (!strcmp(name, "110m")) {
        s->dim = 768, s->n_layers = 12, s->n_heads = 12, s->n_kv_heads = 12;
        s->ffn_dim = 2048, s->vocab = 32000, s->ctx = 1024;
        return 0;
    }
    if (!strcmp(name, "llama32-1b")) {
        /* Llama 3.2 1B as downloaded in Q4_K_M: Q4_K matrices, a Q6_K token_embd tied to the
         * output (give the vocabulary with --tokenizer-from ../shared/models/llama3-vocab.gguf) */
        s->dim = 2048, s->n_layers = 16, s->n_heads = 32, s->n_kv_heads = 8;
        s->ffn_dim = 8192, s->vocab = 128256, s->ctx = 4096, s->rope_base = 500000.0f;
        s->type = GGUF_T_Q4_K, s->embd_type = GGUF_T_Q6_K, s->tied = 1;
        return 0;
    }
    if (!strcmp(name, "1.1b")) {
        s->dim = 2048, s->n_layers = 22, s->n_heads = 32, s->n_kv_heads = 4;
        s->ffn_dim = 5632, s->vocab = 32000, s->ctx = 2048;
        return 0;
    }
    return -1;
}

/* The whole of a (small) text file, NUL-terminated; NULL with a message on failure. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "mkmodel: cannot open %s\n", path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *t = malloc(cap);
    while (t) {
        size_t r = fread(t + n, 1, cap - n - 1, f);
        n += r;
        if (n + 1 < cap) break;
        if (cap > (1u << 24)) {
            fprintf(stderr, "mkmodel: %s is larger than 16 MiB\n", path);
            free(t);
            t = NULL;
            break;
        }
        char *nt = realloc(t, cap *= 2);
        if (!nt) free(t);
        t = nt;
    }
    int bad = ferror(f);
    fclose(f);
    if (!t || bad) {
        if (t) fprintf(stderr, "mkmodel: error reading %s\n", path);
        else fprintf(stderr, "mkmodel: cannot read %s\n", path);
        free(t);
        return NULL;
    }
    t[n] = 0;
    return t;
}

static char *tmpl;   /* --chat-template contents; freed at exit so every return path is clean */
#define MAX_ADD_TOKENS 64
static const char *add_tokens[MAX_ADD_TOKENS];   /* --add-token, in order */
static void free_tmpl(void) { free(tmpl); }

int main(int argc, char **argv)
{
    atexit(free_tmpl);
    struct randmodel_spec s;
    randmodel_defaults(&s);
    const char *out = NULL;
    int rope_given = 0;   /* --rope-base survives a preset given after it */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (out) {
                fprintf(stderr, "mkmodel: more than one output file\n");
                return 2;
            }
            out = a;
            continue;
        }
        if (!strcmp(a, "--tied")) {
            s.tied = 1;
            continue;
        }
        if (!strcmp(a, "--no-add-bos")) {
            s.no_add_bos = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mkmodel: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        long n = 0;
        int *ip = NULL;
        if (!strcmp(a, "--dim")) ip = &s.dim;
        else if (!strcmp(a, "--layers")) ip = &s.n_layers;
        else if (!strcmp(a, "--heads")) ip = &s.n_heads;
        else if (!strcmp(a, "--kv-heads")) ip = &s.n_kv_heads;
        else if (!strcmp(a, "--ffn")) ip = &s.ffn_dim;
        else if (!strcmp(a, "--vocab")) ip = &s.vocab;
        else if (!strcmp(a, "--ctx")) ip = &s.ctx;
        if (ip) {
            if (parse_int(v, 1, 1 << 20, &n)) {
                fprintf(stderr, "mkmodel: bad value for %s: '%s'\n", a, v);
                return 2;
            }
            *ip = (int)n;
        } else if (!strcmp(a, "--type") || !strcmp(a, "--embd-type")) {
            int t = parse_type(v);
            if (t < 0) {
                fprintf(stderr, "mkmodel: unknown type '%s'\n", v);
                return 2;
            }
            if (a[2] == 't') s.type = t;
            else s.embd_type = t;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            s.seed = strtoull(v, &end, 10);
            if (!*v || *end) {
                fprintf(stderr, "mkmodel: bad seed '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--rope-base")) {
            char *end;
            s.rope_base = strtof(v, &end);
            rope_given = 1;
            if (!*v || *end || !(s.rope_base > 0)) {
                fprintf(stderr, "mkmodel: bad rope base '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--boost-token")) {
            if (parse_int(v, 0, INT32_MAX, &n)) {
                fprintf(stderr, "mkmodel: bad token id '%s'\n", v);
                return 2;
            }
            s.boost_token = (int)n;
        } else if (!strcmp(a, "--tokenizer-from")) {
            s.tokenizer_from = v;
        } else if (!strcmp(a, "--add-token")) {
            if (s.n_add_tokens == MAX_ADD_TOKENS) {
                fprintf(stderr, "mkmodel: more than %d --add-token\n", MAX_ADD_TOKENS);
                return 2;
            }
            add_tokens[s.n_add_tokens++] = v;
            s.add_tokens = add_tokens;
        } else if (!strcmp(a, "--chat-template")) {
            free(tmpl);
            tmpl = read_file(v);
            if (!tmpl) return 1;
            s.chat_template = tmpl;
        } else if (!strcmp(a, "--preset")) {
            struct randmodel_spec keep = s;
            if (preset(&s, v)) {
                fprintf(stderr, "mkmodel: unknown preset '%s' (tiny, 110m, 1.1b, llama32-1b)\n", v);
                return 2;
            }
            /* Settings that are not shapes survive a preset given after them; llama32-1b
             * names its weight types too. */
            if (strcmp(v, "llama32-1b") != 0)
                s.type = keep.type, s.embd_type = keep.embd_type, s.tied = keep.tied || s.tied;
            if (rope_given) s.rope_base = keep.rope_base;
            s.seed = keep.seed, s.tokenizer_from = keep.tokenizer_from;
            s.add_tokens = keep.add_tokens, s.n_add_tokens = keep.n_add_tokens;
            s.chat_template = keep.chat_template;
            s.boost_token = keep.boost_token;
        } else {
            fprintf(stderr, "mkmodel: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!out) {
        usage(stderr);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[1024];
    if (randmodel_write(out, &s, err, sizeof err)) {
        fprintf(stderr, "mkmodel: %s\n", err);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct stat st;
    double mb = stat(out, &st) == 0 ? (double)st.st_size / 1e6 : 0;
    fprintf(stderr, "mkmodel: wrote %s (%.1f MB, dim %d, %d layers, %s) in %.2f s\n", out, mb,
            s.dim, s.n_layers, gguf_type_name((uint32_t)s.type),
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
