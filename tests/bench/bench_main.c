/* tests/bench/bench_main: the benchmark program's main, section registry and the shared
 * helpers declared in bench.h (models, read bandwidth, engine timing, report rows). */
#include "tests/bench/bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/model.h"
#include "core/gguf.h"
#include "gpu/decoder.h"
#include "gpu/quant.h"
#include "tests/tools/randmodel.h"
#include "tests/tools/testrng.h"

/* ---- registry ----------------------------------------------------------------------- */

#define MAX_SECTIONS 32
static const struct bench_section *sections[MAX_SECTIONS];
static int n_sections;

void bench_register(const struct bench_section *s)
{
    if (n_sections < MAX_SECTIONS) sections[n_sections++] = s;
    else fprintf(stderr, "cmif-bench: too many sections, '%s' dropped\n", s->name);
}

static int sec_cmp(const void *a, const void *b)
{
    const struct bench_section *x = *(const struct bench_section *const *)a;
    const struct bench_section *y = *(const struct bench_section *const *)b;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ---- report ------------------------------------------------------------------------- */

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bench_title(struct bench *b, const char *title)
{
    fprintf(b->out, "\n== %s\n", title);
    fflush(b->out);
}

void bench_row(struct bench *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(b->out, fmt, ap);
    va_end(ap);
    fputc('\n', b->out);
    fflush(b->out);
}

/* ---- models ------------------------------------------------------------------------- */

struct mdef {
    const char *name, *file;
    int dim, layers, heads, kv_heads, ffn, vocab, ctx, type;
    int embd_type;     /* token_embd type; 0 = same as type */
    int tied;          /* no output.weight: the output projection is token_embd */
    float rope_base;   /* 0 = the default */
    int llama3_vocab;  /* the real Llama 3 tokenizer from ../shared when it is there */
};

static const struct mdef mdefs[BENCH_N_MODELS] = {
    [BENCH_TINY] = {"tiny Q8_0", "tiny-q8_0.gguf", 256, 4, 8, 4, 768, 4096, 512, QT_Q8_0},
    [BENCH_110M_Q8_0] = {"110M Q8_0", "110m-q8_0.gguf", 768, 12, 12, 12, 2048, 32000, 1024, QT_Q8_0},
    [BENCH_110M_Q4_K] = {"110M Q4_K", "110m-q4_k.gguf", 768, 12, 12, 12, 2048, 32000, 1024, QT_Q4_K},
    [BENCH_1B_Q8_0] = {"1.1B Q8_0", "tinyllama-1.1b-q8_0.gguf", 2048, 22, 32, 4, 5632, 32000, 2048, QT_Q8_0},
    [BENCH_1B_Q4_K] = {"1.1B Q4_K", "tinyllama-1.1b-q4_k.gguf", 2048, 22, 32, 4, 5632, 32000, 2048, QT_Q4_K},
    [BENCH_L32_1B_Q4_K] = {"3.2-1B Q4_K", "llama3.2-1b-q4_k.gguf", 2048, 16, 32, 8, 8192, 128256,
                           2048, QT_Q4_K, QT_Q6_K, 1, 500000.0f, 1},
};

const char *bench_model_name(int which)
{
    return which >= 0 && which < BENCH_N_MODELS ? mdefs[which].name : "?";
}

/* The file of model d at p (written on first use; reused while it still opens). */
static const char *model_file(struct bench *b, const struct mdef *d, char *p, size_t cap)
{
    snprintf(p, cap, "%s/%s", b->dir, d->file);
    struct stat st;
    if (stat(p, &st) == 0 && st.st_size > 0) {
        /* reuse only a file that still opens (an interrupted write leaves a bad one) */
        struct gguf *g;
        char err[256];
        if (gguf_open(&g, p, err, sizeof err) == 0) {
            gguf_close(g);
            return p;
        }
        fprintf(b->out, "   (%s is unusable: %s; rewriting)\n", p, err);
    }
    if (mkdir(b->dir, 0755) != 0 && errno != EEXIST) {
        fprintf(b->out, "cmif-bench: cannot create %s: %s\n", b->dir, strerror(errno));
        return NULL;
    }
    struct randmodel_spec s;
    randmodel_defaults(&s);
    s.dim = d->dim;
    s.n_layers = d->layers;
    s.n_heads = d->heads;
    s.n_kv_heads = d->kv_heads;
    s.ffn_dim = d->ffn;
    s.vocab = d->vocab;
    s.ctx = d->ctx;
    s.type = d->type;
    if (d->embd_type) s.embd_type = d->embd_type;
    s.tied = d->tied;
    if (d->rope_base > 0) s.rope_base = d->rope_base;
    s.seed = 42;
    char vocab[1024];
    const char *shared = getenv("CMIF_SHARED");
    snprintf(vocab, sizeof vocab, "%s/models/llama3-vocab.gguf", shared && *shared ? shared : "../shared");
    if (d->llama3_vocab && access(vocab, R_OK) == 0) s.tokenizer_from = vocab;
    char tmp[1100], err[256];
    snprintf(tmp, sizeof tmp, "%s.part", p);
    fprintf(b->out, "   (writing %s ...)\n", p);
    fflush(b->out);
    double t0 = bench_now();
    if (randmodel_write(tmp, &s, err, sizeof err) != 0) {
        fprintf(b->out, "cmif-bench: cannot write %s: %s\n", tmp, err);
        unlink(tmp);
        return NULL;
    }
    if (rename(tmp, p) != 0) {
        fprintf(b->out, "cmif-bench: rename %s: %s\n", tmp, strerror(errno));
        return NULL;
    }
    fprintf(b->out, "   (wrote %s in %.1f s)\n", p, bench_now() - t0);
    return p;
}

const char *bench_model_path(struct bench *b, int which)
{
    static char paths[BENCH_N_MODELS][1024];
    if (which < 0 || which >= BENCH_N_MODELS) return NULL;
    return model_file(b, &mdefs[which], paths[which], sizeof paths[which]);
}

const char *bench_model_typed(struct bench *b, int base, int type, char *name, size_t namelen)
{
    static char path[1024];
    static char file[128];
    if (base < 0 || base >= BENCH_N_MODELS || !strcmp(qt_name(type), "unknown")) return NULL;
    struct mdef d = mdefs[base];
    const char *dot = strrchr(d.file, '-');
    snprintf(file, sizeof file, "%.*s-%s.gguf", dot ? (int)(dot - d.file) : 8, d.file, qt_name(type));
    for (char *c = file; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    const char *sp = strchr(d.name, ' ');
    snprintf(name, namelen, "%.*s %s", sp ? (int)(sp - d.name) : 6, d.name, qt_name(type));
    d.file = file;
    d.type = type;
    return model_file(b, &d, path, sizeof path);
}

/* ---- read bandwidth ----------------------------------------------------------------- */

struct bw_arg {
    const unsigned char *p;
    size_t n;
    uint64_t sum;
};

/* Four independent 256-bit accumulators so the loop is bound by loads, not add latency, and
 * one line per KiB touched 32 KiB ahead, as the decode kernels do (16 KiB): that keeps the
 * hardware prefetcher streaming across page boundaries and read 3-10% more here than the
 * bare loop, and a yardstick slower than the kernels would flatter them. */
typedef uint64_t v4u64 __attribute__((vector_size(32)));

__attribute__((target("avx2"))) static uint64_t sum_avx2(const unsigned char *p, size_t n)
{
    v4u64 a = {0}, b2 = {0}, c = {0}, d = {0};
    for (size_t i = 0; i + 128 <= n; i += 128) {
        if (!(i & 1023)) __builtin_prefetch(p + i + 32768);
        a += *(const v4u64 *)(p + i);
        b2 += *(const v4u64 *)(p + i + 32);
        c += *(const v4u64 *)(p + i + 64);
        d += *(const v4u64 *)(p + i + 96);
    }
    a += b2 + c + d;
    return a[0] + a[1] + a[2] + a[3];
}

static uint64_t sum_plain(const unsigned char *p, size_t n)
{
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a = 0, b2 = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) {
        a += q[i];
        b2 += q[i + 1];
        c += q[i + 2];
        d += q[i + 3];
    }
    return a + b2 + c + d;
}

static void *bw_thread(void *arg)
{
    struct bw_arg *a = arg;
    a->sum = __builtin_cpu_supports("avx2") ? sum_avx2(a->p, a->n) : sum_plain(a->p, a->n);
    return NULL;
}

/* Every pass of the run, per thread count: the yardstick is a statistic over all of them,
 * so passes taken before, between and after other measurements all count. */
#define BW_MAX_PASSES 256
static double bw_pass[65][BW_MAX_PASSES];
static int bw_npass[65];
static unsigned char *bw_buf;
static size_t bw_n;

static void bw_free(void) { free(bw_buf); }

void bench_bw_release(void)
{
    free(bw_buf);
    bw_buf = NULL;   /* the next pass allocates and fills it again before it is timed */
}

/* The buffer: at least 1 GiB and 4x the last-level cache where the system says how big that
 * is (capped at 4 GiB), so no pass is served from a cache. */
static size_t bw_size(const struct bench *b)
{
    if (b->quick) return (size_t)128 << 20;
    size_t n = (size_t)1 << 30;
#ifdef _SC_LEVEL3_CACHE_SIZE
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0 && (size_t)l3 * 4 > n) n = (size_t)l3 * 4;
#endif
    if (n > ((size_t)4 << 30)) n = (size_t)4 << 30;
    return n / ((size_t)2 << 20) * ((size_t)2 << 20);
}

double bench_read_bw_pass(struct bench *b, int threads)
{
    if (threads < 1 || threads > 64) return 0;
    if (!bw_buf) {
        bw_n = bw_size(b);
        bw_buf = aligned_alloc((size_t)2 << 20, bw_n);   /* huge pages, as packed weights get */
        if (!bw_buf) {
            fprintf(b->out, "cmif-bench: cannot allocate %zu MiB for the bandwidth test\n",
                    bw_n >> 20);
            return 0;
        }
#ifdef MADV_HUGEPAGE
        (void)madvise(bw_buf, bw_n, MADV_HUGEPAGE);
#endif
        for (size_t i = 0; i < bw_n; i += 4096) memset(bw_buf + i, (int)(i >> 12), 4096);
        static int registered;
        if (!registered++) atexit(bw_free);
    }
    pthread_t th[64];
    struct bw_arg args[64];
    int started[64] = {0};
    size_t chunk = bw_n / (size_t)threads / 128 * 128;
    double t0 = bench_now();
    for (int t = 1; t < threads; t++) {
        args[t] = (struct bw_arg){bw_buf + (size_t)t * chunk, chunk, 0};
        started[t] = pthread_create(&th[t], NULL, bw_thread, &args[t]) == 0;
        if (!started[t]) bw_thread(&args[t]);
    }
    args[0] = (struct bw_arg){bw_buf, chunk, 0};
    bw_thread(&args[0]);
    for (int t = 1; t < threads; t++)
        if (started[t]) pthread_join(th[t], NULL);
    double dt = bench_now() - t0;
    volatile uint64_t sink = 0;
    for (int t = 0; t < threads; t++) sink += args[t].sum;
    (void)sink;
    double gbs = (double)chunk * threads / dt / 1e9;
    if (bw_npass[threads] < BW_MAX_PASSES) bw_pass[threads][bw_npass[threads]++] = gbs;
    return gbs;
}

int bench_bw_sample(struct bench *b, int threads, int passes)
{
    for (int i = 0; i < passes; i++)
        if (bench_read_bw_pass(b, threads) <= 0) return -1;
    return 0;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_bw_stats(int threads, struct bench_bw *s)
{
    memset(s, 0, sizeof *s);
    if (threads < 1 || threads > 64 || bw_npass[threads] == 0) return;
    int n = bw_npass[threads];
    double v[BW_MAX_PASSES];
    memcpy(v, bw_pass[threads], sizeof(double) * (size_t)n);
    qsort(v, (size_t)n, sizeof v[0], dcmp);
    s->passes = n;
    s->min = v[0];
    s->best = v[n - 1];
    s->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s->spread = (s->best - s->median) / s->best;
}

int bench_bw_stable(const struct bench_bw *s)
{
    return s->passes >= 3 && s->spread <= BENCH_BW_MAX_SPREAD;
}

void bench_bw_describe(const struct bench_bw *s, char *buf, size_t len)
{
    snprintf(buf, len, "best %.2f, median %.2f, min %.2f GB/s over %d passes, spread "
             "(best-median)/best %.3f (%s, limit %.2f)", s->best, s->median, s->min, s->passes,
             s->spread, bench_bw_stable(s) ? "stable" : "unstable", BENCH_BW_MAX_SPREAD);
}

double bench_read_bw(struct bench *b, int threads)
{
    if (threads < 1 || threads > 64) return 0;
    int want = b->quick ? 3 : 6;
    if (bw_npass[threads] < want && bench_bw_sample(b, threads, want - bw_npass[threads]))
        return 0;
    struct bench_bw s;
    bench_bw_stats(threads, &s);
    return s.best;
}

/* ---- engine ------------------------------------------------------------------------- */

int bench_engine_open(struct bench_engine *e, const char *path, int threads, int device, int ctx)
{
    char err[512];
    memset(e, 0, sizeof *e);
    e->rng = 0x9e3779b97f4a7c15ULL;
    double t0 = bench_now();
    if (gguf_open(&e->g, path, err, sizeof err) || model_open(&e->m, e->g, err, sizeof err)) {
        fprintf(stderr, "cmif-bench: %s: %s\n", path, err);
        bench_engine_close(e);
        return -1;
    }
    struct dec_options o = {.ctx = ctx, .threads = threads, .device = device, .cl_index = -1};
    if (dec_open(&e->d, &e->m->w, &o, err, sizeof err)) {
        fprintf(stderr, "cmif-bench: %s: %s\n", path, err);
        bench_engine_close(e);
        return -1;
    }
    e->load_ms = (bench_now() - t0) * 1e3;
    e->dim = e->m->w.cfg.dim;
    e->vocab = e->m->w.cfg.vocab;
    e->ctx = dec_ctx(e->d);
    e->weight_bytes = e->m->weight_bytes;
    e->x = malloc(sizeof(float) * (size_t)e->dim * (size_t)e->ctx);
    e->logits = malloc(sizeof(float) * (size_t)e->vocab * 2);
    if (!e->x || !e->logits) {
        fprintf(stderr, "cmif-bench: out of memory\n");
        bench_engine_close(e);
        return -1;
    }
    return 0;
}

void bench_engine_close(struct bench_engine *e)
{
    dec_close(e->d);
    model_close(e->m);
    gguf_close(e->g);
    free(e->x);
    free(e->logits);
    memset(e, 0, sizeof *e);
}

static int32_t rand_id(struct bench_engine *e)
{
    return (int32_t)(testrng_next(&e->rng) % (uint64_t)e->vocab);
}

static int fill(struct bench_engine *e, int n)
{
    char err[256];
    for (int i = 0; i < n; i++)
        if (model_embed_token(e->m, rand_id(e), e->x + (size_t)i * e->dim, err, sizeof err)) {
            fprintf(stderr, "cmif-bench: %s\n", err);
            return -1;
        }
    return 0;
}

double bench_prompt_tps(struct bench_engine *e, int n)
{
    char err[256];
    if (n < 1 || n > e->ctx || fill(e, n)) return 0;
    double t0 = bench_now();
    if (dec_forward(e->d, e->x, n, 0, e->logits, 0, err, sizeof err)) {
        fprintf(stderr, "cmif-bench: %s\n", err);
        return 0;
    }
    return n / (bench_now() - t0);
}

double bench_decode_tps(struct bench_engine *e, int n, int start)
{
    char err[256];
    if (n < 1 || start < 0 || start + n > e->ctx || fill(e, 1)) return 0;
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
        if (dec_forward(e->d, e->x, 1, start + i, e->logits, 0, err, sizeof err)) {
            fprintf(stderr, "cmif-bench: %s\n", err);
            return 0;
        }
        /* the next input depends on this step's output, as in real decoding */
        int32_t best = 0;
        for (int32_t v = 1; v < e->vocab; v++)
            if (e->logits[v] > e->logits[best]) best = v;
        if (model_embed_token(e->m, best, e->x, err, sizeof err)) return 0;
    }
    return n / (bench_now() - t0);
}

/* ---- main --------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: cmif-bench [--quick] [--only NAME[,NAME...]] [--list] [--threads N] "
               "[--dir DIR] [--types T[,T...]]\n"
               "  --quick      tiny model, few tokens: a smoke run of every section\n"
               "  --only       run only these sections (see --list)\n"
               "  --threads N  measure 1..N threads (default 2)\n"
               "  --dir DIR    benchmark models (default $CMIF_BENCH_DIR or /tmp/cmif-bench)\n"
               "  --types T    llamacpp sections: only these weight types (e.g. Q4_0,IQ4_NL)\n");
}

int bench_selected(const char *only, const char *name)
{
    if (!only) return 1;
    size_t n = strlen(name);
    for (const char *p = only; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bench b = {0, 2, NULL, stdout, NULL};
    const char *only = NULL;
    int list = 0;
    b.dir = getenv("CMIF_BENCH_DIR");
    if (!b.dir || !*b.dir) b.dir = "/tmp/cmif-bench";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) b.quick = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) b.dir = argv[++i];
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) b.types = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > 64) {
                fprintf(stderr, "cmif-bench: --threads wants 1..64\n");
                return 2;
            }
            b.max_threads = (int)t;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cmif-bench: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    qsort(sections, (size_t)n_sections, sizeof sections[0], sec_cmp);
    if (list) {
        for (int i = 0; i < n_sections; i++)
            printf("%-12s %s\n", sections[i]->name, sections[i]->desc);
        return 0;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    fprintf(b.out, "cmif-bench%s: %ld CPUs, SIMD %s, models in %s\n", b.quick ? " --quick" : "",
            ncpu, qt_simd_level(), b.dir);
    fprintf(b.out, "(the machine may be shared: compare ratios from the same run)\n");
    int failed = 0, ran = 0;
    double t0 = bench_now();
    for (int i = 0; i < n_sections; i++) {
        if (!bench_selected(only, sections[i]->name)) continue;
        ran++;
        if (sections[i]->fn(&b) != 0) {
            fprintf(b.out, "!! section %s failed\n", sections[i]->name);
            failed++;
        }
    }
    if (!ran) {
        fprintf(stderr, "cmif-bench: no section matches '%s' (see --list)\n", only ? only : "");
        return 2;
    }
    fprintf(b.out, "\n%d section%s in %.1f s%s\n", ran, ran == 1 ? "" : "s", bench_now() - t0,
            failed ? ", some failed" : "");
    return failed ? 1 : 0;
}
