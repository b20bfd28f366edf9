/* app/opts: shared llama.cpp-style flag parsing (see opts.h). */
#include "app/opts.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gpu/decoder.h"

enum {
    K_MODEL = 1, K_PROMPT, K_FILE, K_PREDICT, K_THREADS, K_CTX, K_SEED, K_TEMP, K_TOPK,
    K_TOPP, K_MINP, K_REPPEN, K_REPN, K_DEVICE, K_HELP, K_EPS, K_BUDGET, K_SCOPE, K_UNIT,
    K_MECH, K_CLUSTER, K_DPSEED, K_NOLEDGER, K_COREMEM, K_LOCKED,
};

struct flag {
    const char *long_name;
    char short_name;
    int key;
    unsigned group;
    const char *help;
};

static const struct flag flags[] = {
    {"model", 'm', K_MODEL, OPT_MODEL, "-m, --model PATH       GGUF model file"},
    {"prompt", 'p', K_PROMPT, OPT_PROMPT, "-p, --prompt TEXT      prompt (\"\" starts from BOS alone)"},
    {"file", 'f', K_FILE, OPT_PROMPT, "-f, --file PATH        read the prompt from a file (- = stdin; keeps it off argv)"},
    {"n-predict", 'n', K_PREDICT, OPT_PREDICT,
     "-n, --n-predict N      tokens to generate (-1 = until end or context full)"},
    {"threads", 't', K_THREADS, OPT_THREADS, "-t, --threads N        CPU threads (default: all cores)"},
    {"ctx-size", 'c', K_CTX, OPT_CTX,
     "-c, --ctx-size N       context length (default: min(trained, 4096))"},
    {"seed", 's', K_SEED, OPT_SAMPLING, "-s, --seed N           sampling seed (default: random)"},
    {"temp", 0, K_TEMP, OPT_SAMPLING, "    --temp T           temperature (0 = greedy; default 0.8)"},
    {"top-k", 0, K_TOPK, OPT_SAMPLING, "    --top-k N          top-k sampling (0 = off; default 40)"},
    {"top-p", 0, K_TOPP, OPT_SAMPLING, "    --top-p P          top-p sampling (1 = off; default 0.95)"},
    {"min-p", 0, K_MINP, OPT_SAMPLING, "    --min-p P          min-p sampling (0 = off; default 0.05)"},
    {"repeat-penalty", 0, K_REPPEN, OPT_SAMPLING,
     "    --repeat-penalty F repetition penalty (1 = off; default 1.0)"},
    {"repeat-last-n", 0, K_REPN, OPT_SAMPLING,
     "    --repeat-last-n N  tokens the penalty looks back over (default 64)"},
    {"device", 0, K_DEVICE, OPT_DEVICE,
     "    --device D         auto, cpu or cl[:N] (OpenCL device N; default auto)"},
    {"eps", 0, K_EPS, OPT_PRIVACY,
     "    --eps E            ε per sanitized word (or token with --unit token; default 1)"},
    {"budget", 0, K_BUDGET, OPT_PRIVACY,
     "    --budget B         ε a day over a rolling 24 hours, kept in the per-user ledger\n"
     "                       $XDG_STATE_HOME/cmif/ledger (default 200: about 40 messages with\n"
     "                       a few secrets each at ε 1)"},
    {"sanitize", 0, K_SCOPE, OPT_PRIVACY,
     "    --sanitize S       auto (default): common words sent as typed; names, numbers,\n"
     "                       addresses and rare words sanitized. all: every word. marked:\n"
     "                       only what is inside {{ }} ({{ }} marks in every mode)"},
    {"unit", 0, K_UNIT, OPT_PRIVACY,
     "    --unit U           word (default: a word costs ε once) or token (every sub-word\n"
     "                       piece, as the CMIF paper)"},
    {"no-ledger", 0, K_NOLEDGER, OPT_PRIVACY,
     "    --no-ledger        do not read or charge the ledger (the budget is this run's)"},
    {"mechanism", 0, K_MECH, OPT_PRIVACY,
     "    --mechanism M      rnm (default), rnm-exp, santext+, custext+, none"},
    {"cluster-size", 0, K_CLUSTER, OPT_PRIVACY,
     "    --cluster-size K   tokens per sanitizer cluster (default 20)"},
    {"dp-seed", 0, K_DPSEED, OPT_PRIVACY,
     "    --dp-seed N        reproducible sanitizer noise: FOR TESTS ONLY, NOT PRIVATE"},
    {"core-mem", 0, K_COREMEM, OPT_CORE_MEM,
     "    --core-mem BYTES   guarded memory for the core (K/M/G suffixes; default: fits\n"
     "                       RLIMIT_MEMLOCK)"},
    {"require-locked", 0, K_LOCKED, OPT_CORE_MEM,
     "    --require-locked   refuse to run when the core's memory cannot be locked"},
    {NULL, 0, 0, 0, NULL},
};

void opts_defaults(struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->threads = 0;
    o->ctx = 0;
    sampler_defaults(&o->sp);
    o->device = DEC_DEV_AUTO;
    o->cl_index = -1;
    core_defaults(&o->core);
}

int opts_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    if (!s || !*s) return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int opts_float(const char *s, double lo, double hi, double *out)
{
    char *end;
    if (!s || !*s) return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_device(struct opts *o, const char *v)
{
    long idx;
    if (!strcmp(v, "auto")) { o->device = DEC_DEV_AUTO; o->cl_index = -1; return 0; }
    if (!strcmp(v, "cpu")) { o->device = DEC_DEV_CPU; o->cl_index = -1; return 0; }
    if (!strcmp(v, "cl") || !strcmp(v, "opencl")) { o->device = DEC_DEV_CL; o->cl_index = -1; return 0; }
    if (!strncmp(v, "cl:", 3) && opts_int(v + 3, 0, 1024, &idx) == 0) {
        o->device = DEC_DEV_CL;
        o->cl_index = (int)idx;
        return 0;
    }
    return -1;
}

/* A number within [lo, hi] into *dst; 0, or -1 (then *dst is untouched). */
static int set_int(const char *v, long lo, long hi, int *dst)
{
    long l;
    if (opts_int(v, lo, hi, &l)) return -1;
    *dst = (int)l;
    return 0;
}

static int set_float(const char *v, double lo, double hi, float *dst)
{
    double d;
    if (opts_float(v, lo, hi, &d)) return -1;
    *dst = (float)d;
    return 0;
}

/* The flags of OPT_PRIVACY and OPT_CORE_MEM. */
static int set_core(struct core_options *c, int *no_ledger, int key, const char *name,
                    const char *v, char *err, size_t errlen)
{
    double d;
    long l;
    switch (key) {
    case K_EPS:
    case K_BUDGET:
        if (opts_float(v, -INFINITY, INFINITY, &d)) break;
        if (core_check_eps(d, key == K_EPS ? "--eps" : "--budget", err, errlen)) return -1;
        *(key == K_EPS ? &c->eps : &c->budget) = d;
        return 0;
    case K_SCOPE:
        if ((c->scope = core_scope_parse(v)) >= 0) return 0;
        snprintf(err, errlen, "--sanitize: '%s' is not auto, all or marked", v);
        return -1;
    case K_UNIT:
        if ((c->unit = core_unit_parse(v)) >= 0) return 0;
        snprintf(err, errlen, "--unit: '%s' is not word or token", v);
        return -1;
    case K_MECH:
        if ((c->mechanism = core_mech_parse(v)) >= 0) return 0;
        snprintf(err, errlen, "--mechanism: unknown '%s' (rnm, rnm-exp, santext+, custext+, none)", v);
        return -1;
    case K_CLUSTER:
        if (opts_int(v, 2, 100000, &l) == 0) {
            c->cluster_size = (int)l;
            return 0;
        }
        snprintf(err, errlen, "--cluster-size: '%s' is not an integer from 2 to 100000", v);
        return -1;
    case K_DPSEED: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (!*v || *v == '-' || errno || *end) {
            snprintf(err, errlen, "--dp-seed: '%s' is not a non-negative integer", v);
            return -1;
        }
        c->seeded = 1;
        c->seed = s;
        return 0;
    }
    case K_NOLEDGER: *no_ledger = 1; return 0;
    case K_COREMEM:
        if (core_parse_size(v, &c->mem_limit) == 0 && c->mem_limit > 0) return 0;
        snprintf(err, errlen, "--core-mem: '%s' is not a size in bytes (e.g. 65536, 8M)", v);
        return -1;
    case K_LOCKED: c->require_locked = 1; return 0;
    }
    snprintf(err, errlen, "invalid value '%s' for %s", v, name);
    return -1;
}

static int set_common(struct opts *o, int key, const char *name, const char *v, char *err,
                      size_t errlen)
{
    double d;
    switch (key) {
    case K_MODEL: o->model = v; return 0;
    case K_PROMPT: o->prompt = v; return 0;
    case K_FILE: o->prompt_file = v; return 0;
    case K_PREDICT: if (set_int(v, -1, INT_MAX / 2, &o->n_predict) == 0) return 0; break;
    case K_THREADS: if (set_int(v, 0, 1024, &o->threads) == 0) return 0; break;
    case K_CTX: if (set_int(v, 0, 1 << 24, &o->ctx) == 0) return 0; break;
    case K_SEED: {
        char *end;
        if (!*v || *v == '-') break;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || *end) break;
        o->sp.seed = (uint64_t)s;
        o->seed_given = 1;
        return 0;
    }
    case K_TEMP: if (set_float(v, 0.0, 1e6, &o->sp.temp) == 0) return 0; break;
    case K_TOPK: if (set_int(v, 0, INT_MAX, &o->sp.top_k) == 0) return 0; break;
    case K_TOPP: if (set_float(v, 0.0, 1.0, &o->sp.top_p) == 0) return 0; break;
    case K_MINP: if (set_float(v, 0.0, 1.0, &o->sp.min_p) == 0) return 0; break;
    case K_REPPEN:
        if (opts_float(v, 0.0, 1e6, &d) || d <= 0.0) break;
        o->sp.repeat_penalty = (float)d;
        return 0;
    case K_REPN: if (set_int(v, 0, INT_MAX / 2, &o->sp.repeat_last_n) == 0) return 0; break;
    case K_DEVICE:
        if (parse_device(o, v)) {
            snprintf(err, errlen, "--device: expected auto, cpu, cl or cl:N, got '%s'", v);
            return -1;
        }
        return 0;
    default: return set_core(&o->core, &o->no_ledger, key, name, v, err, errlen);
    }
    snprintf(err, errlen, "invalid value '%s' for %s", v, name);
    return -1;
}

int opts_refusal_fn(void *ctx, int id, const char *val, char *err, size_t errlen)
{
    struct opts_refusal *r = ctx;
    if (r->fn(r->ctx, id, val, err, errlen) == 0) return 0;
    r->refused = 1;
    return -1;
}

int opts_parse(struct opts *o, int argc, char **argv, unsigned accept,
               const struct opts_extra *extra, opts_extra_fn extra_fn, void *ctx, char *err,
               size_t errlen)
{
    int only_args = 0;
    /* Positional arguments are moved down to argv[1 + n_args]: that slot is at or before i
     * and held an argument or a flag already read, so nothing unread is overwritten. */
    o->args = argv + 1;
    o->n_args = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == '\0') {
            o->args[o->n_args++] = a;
            if (accept & OPT_ARGS_END_FLAGS) only_args = 1;
            continue;
        }
        if (!strcmp(a, "--")) { only_args = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;

        /* Split "--name=value"; short flags take the next argument. */
        const char *name = NULL, *inline_val = NULL;
        char namebuf[64];
        char shortc = 0;
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            if (n >= sizeof namebuf) n = sizeof namebuf - 1;
            memcpy(namebuf, a + 2, n);
            namebuf[n] = '\0';
            name = namebuf;
            if (eq) inline_val = eq + 1;
        } else if (a[2] == '\0') {
            shortc = a[1];
        } else {
            snprintf(err, errlen, "unknown option '%s'", a);
            return -1;
        }

        const struct flag *fl = NULL;
        for (const struct flag *f = flags; f->long_name; f++) {
            if (!(f->group & accept)) continue;
            if ((name && !strcmp(name, f->long_name)) || (shortc && shortc == f->short_name)) {
                fl = f;
                break;
            }
        }
        const struct opts_extra *ex = NULL;
        if (!fl && extra) {
            for (const struct opts_extra *e = extra; e->long_name; e++) {
                if ((name && !strcmp(name, e->long_name)) ||
                    (shortc && e->short_name && shortc == e->short_name)) {
                    ex = e;
                    break;
                }
            }
        }
        if (!fl && !ex) {
            snprintf(err, errlen, "unknown option '%s'", a);
            return -1;
        }
        int has_arg = fl ? fl->key != K_NOLEDGER && fl->key != K_LOCKED : ex->has_arg;
        const char *val = NULL;
        if (has_arg == OPTS_ARG_OPTIONAL) {
            /* "--flag=V", "--flag V" (V not an option), or "--flag" alone (NULL). */
            if (inline_val) val = inline_val;
            else if (i + 1 < argc && argv[i + 1][0] != '-') val = argv[++i];
        } else if (has_arg) {
            if (inline_val) {
                val = inline_val;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                snprintf(err, errlen, "option '%s' needs a value", a);
                return -1;
            }
        } else if (inline_val) {
            snprintf(err, errlen, "option '%s' takes no value", a);
            return -1;
        }
        if (fl) {
            if (set_common(o, fl->key, a, val, err, errlen)) {
                o->bad_value = 1;
                return -1;
            }
        } else {
            if (!extra_fn || extra_fn(ctx, ex->id, val, err, errlen)) {
                if (!extra_fn) snprintf(err, errlen, "option '%s' is not handled", a);
                return -1;
            }
        }
    }
    if (o->prompt && o->prompt_file) {
        snprintf(err, errlen, "give either -p or -f, not both");
        return -1;
    }
    if ((accept & OPT_SAMPLING) && !o->seed_given) o->sp.seed = SAMPLER_SEED_RANDOM;
    return 0;
}

void opts_usage(FILE *f, unsigned accept, const struct opts_extra *extra)
{
    for (const struct flag *fl = flags; fl->long_name; fl++)
        if (fl->group & accept) fprintf(f, "  %s\n", fl->help);
    if (extra)
        for (const struct opts_extra *e = extra; e->long_name; e++)
            if (e->help) /* "--long ..." lines line up under "-x, --long ..." ones */
                fprintf(f, "  %s%s\n", strncmp(e->help, "--", 2) ? "" : "    ", e->help);
    fprintf(f, "  -h, --help             this help\n");
}

int opts_read_prompt(const struct opts *o, char **text, size_t *len, char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    if (o->prompt) {
        size_t n = strlen(o->prompt);
        char *t = malloc(n + 1);
        if (!t) { snprintf(err, errlen, "out of memory"); return -1; }
        memcpy(t, o->prompt, n + 1);
        opts_wipe_arg(o->prompt);
        *text = t;
        *len = n;
        return 0;
    }
    if (!o->prompt_file) return 0;
    if (!strcmp(o->prompt_file, "-")) return opts_read_stream(stdin, "stdin", 1, text, len, err, errlen);
    return opts_read_file(o->prompt_file, 1, text, len, err, errlen);
}

int opts_read_stream(FILE *f, const char *name, unsigned max_gib, char **text, size_t *len,
                     char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    size_t max = (size_t)max_gib << 30, cap = 65536, n = 0;
    char *t = malloc(cap);
    if (!t) goto oom;
    for (;;) {
        if (n + 1 >= cap) {   /* full but for the NUL */
            if (n > max) {
                snprintf(err, errlen, "%s: larger than %u GiB", name, max_gib);
                free(t);
                return -1;
            }
            /* never more than max + 1 bytes of data: enough to see that it is too large */
            size_t nc = cap > (max + 2) / 2 ? max + 2 : cap * 2;
            char *nt = realloc(t, nc);
            if (!nt) {
                free(t);
                goto oom;
            }
            t = nt;
            cap = nc;
        }
        size_t r = fread(t + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", name, strerror(errno));
        free(t);
        return -1;
    }
    t[n] = '\0';
    *text = t;
    *len = n;
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", name);
    return -1;
}

int opts_read_file(const char *path, unsigned max_gib, char **text, size_t *len, char *err,
                   size_t errlen)
{
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = opts_read_stream(f, path, max_gib, text, len, err, errlen);
    fclose(f);
    return rc;
}

void opts_argv_warning(const char *flag, const char *instead)
{
    fprintf(stderr,
            "cmif: warning: the text of %s is on the command line, which other local users can "
            "read (ps, /proc/PID/cmdline) until cmif wipes it; use %s instead\n",
            flag, instead);
}

void opts_wipe_arg(const char *arg)
{
    /* argv strings are the process's own writable memory: what /proc/PID/cmdline shows. */
    if (arg) sodium_memzero((char *)arg, strlen(arg));
}

static void no_model(FILE *f, const char *cmd)
{
    fprintf(f, "%s: no model given. Pass one with -m MODEL.gguf (or set CMIF_MODEL);\n"
               "  e.g. cmif -m ../shared/models/stories260K.gguf\n"
               "  (the bundled default %s was found neither under the current\n"
               "  directory nor under the directory above the cmif binary)\n",
            cmd, OPTS_DEFAULT_MODEL);
}

static const char *find_model(const char *given, char *buf, size_t cap)
{
    if (given) return given;
    const char *env = getenv("CMIF_MODEL");
    if (env && *env) return env;
    if (access(OPTS_DEFAULT_MODEL, R_OK) == 0) return OPTS_DEFAULT_MODEL;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, cap, "%s/../%s", exe, OPTS_DEFAULT_MODEL);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    return NULL;
}

const char *opts_find_model(const char *given, char *buf, size_t cap, const char *cmd)
{
    const char *m = find_model(given, buf, cap);
    if (!m) no_model(stderr, cmd);
    return m;
}


int opts_need_model(struct opts *o, int r, const char *err, const char *cmd, char *buf,
                    size_t cap)
{
    if (r < 0 || o->n_args > 0) {
        fprintf(stderr, "%s: %s\n", cmd, r < 0 ? err : "unexpected argument");
        return -1;
    }
    return (o->model = opts_find_model(o->model, buf, cap, cmd)) ? 0 : -1;
}
