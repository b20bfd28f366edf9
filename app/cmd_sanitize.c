/* app/cmd_sanitize: `cmif sanitize` — run text through the confidential core's sanitizer and
 * show what would be sent: the sanitized text on the first line, then the per-token report. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cmd.h"
#include "core/core.h"

static void print_public_set(FILE *f)
{
    fprintf(f, "public set in force (sent as-is at ε = 0, marked \"public\"): tokens whose piece "
               "is made only of these characters (assets/public-tokens.txt):\n  ");
    for (const char *p = core_public_chars(); *p; p++) {
        switch (*p) {
        case ' ': fputs("\\s ", f); break;
        case '\t': fputs("\\t ", f); break;
        case '\n': fputs("\\n ", f); break;
        case '\r': fputs("\\r ", f); break;
        case '\v': fputs("\\v ", f); break;
        case '\f': fputs("\\f ", f); break;
        default: fprintf(f, "%c ", *p);
        }
    }
    fputs("\ncontrol and chat-template tokens are never sanitized and cost 0.\n", f);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cmif sanitize -m MODEL.gguf [--eps E] [--budget B] "
            "[--mechanism rnm|rnm-exp|santext+|custext+] [--cluster-size K] [--seed N] "
            "[--cache-dir DIR] [-q] [-f FILE | TEXT...]\n"
            "  Sanitizes TEXT (or the contents of FILE, or stdin with -f -) inside the\n"
            "  confidential core and prints the sanitized text, then one row per token:\n"
            "  original piece, sent piece, kept/replaced/public/control, ε charged, cluster size.\n"
            "  --eps E            ε per sanitized token (default 1)\n"
            "  --budget B         session budget (default 64); exit 3 when the text costs more\n"
            "  --mechanism M      rnm (default), rnm-exp, santext+, custext+\n"
            "  --cluster-size K   tokens per cluster (default 20)\n"
            "  --seed N           reproducible noise: FOR TESTS ONLY, NOT PRIVATE\n"
            "  --cache-dir DIR    cluster cache (default $XDG_CACHE_HOME/cmif)\n"
            "  -q, --quiet        no progress while clustering\n");
    print_public_set(f);
}

static int parse_double(const char *s, const char *what, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "cmif sanitize: %s: '%s' is not a number\n", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* The text is the user's secret: read unbuffered (no copy left in a stdio buffer) and wipe
 * every buffer that is outgrown or dropped. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cmif sanitize: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    setvbuf(f, NULL, _IONBF, 0);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = cap <= SIZE_MAX / 2 ? malloc(cap * 2) : NULL;
            if (nb) memcpy(nb, buf, n);
            core_wipe(buf, cap);
            free(buf);
            buf = nb;
            if (!nb) break;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || bad) {
        fprintf(stderr, "cmif sanitize: cannot read %s\n", path);
        core_wipe(buf, buf ? cap : 0);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int cont_bytes(const char *s)
{
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) == 0x80;
    return n;
}

static int cmd_sanitize_exec(int argc, char **argv)
{
    struct core_options o;
    core_defaults(&o);
    const char *model = NULL, *file = NULL;
    enum { O_EPS = 256, O_BUDGET, O_MECH, O_K, O_SEED, O_CACHE };
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"eps", required_argument, 0, O_EPS},
        {"budget", required_argument, 0, O_BUDGET}, {"mechanism", required_argument, 0, O_MECH},
        {"cluster-size", required_argument, 0, O_K}, {"seed", required_argument, 0, O_SEED},
        {"cache-dir", required_argument, 0, O_CACHE}, {"file", required_argument, 0, 'f'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+m:f:qh", lo, NULL)) != -1) {
        double v;
        switch (ch) {
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case O_EPS:
            if (parse_double(optarg, "--eps", &o.eps)) return EXIT_USAGE;
            break;
        case O_BUDGET:
            if (parse_double(optarg, "--budget", &o.budget)) return EXIT_USAGE;
            break;
        case O_MECH:
            o.mechanism = core_mech_parse(optarg);
            if (o.mechanism < 0 || o.mechanism == CORE_MECH_NONE) {
                fprintf(stderr, "cmif sanitize: unknown mechanism '%s' "
                                "(rnm, rnm-exp, santext+, custext+)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_K:
            if (parse_double(optarg, "--cluster-size", &v)) return EXIT_USAGE;
            if (v < 2 || v > 100000 || v != (int)v) {
                fprintf(stderr, "cmif sanitize: --cluster-size must be an integer from 2 to 100000\n");
                return EXIT_USAGE;
            }
            o.cluster_size = (int)v;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end) {
                fprintf(stderr, "cmif sanitize: --seed: '%s' is not an integer\n", optarg);
                return EXIT_USAGE;
            }
            o.seeded = 1;
            o.seed = s;
            break;
        }
        case O_CACHE: o.cache_dir = optarg; break;
        default:
            fprintf(stderr, "cmif sanitize: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    char err[512];
    const char *what[] = {"--eps", "--budget"};
    double vals[] = {o.eps, o.budget};
    for (int i = 0; i < 2; i++) {
        if (core_check_eps(vals[i], what[i], err, sizeof err)) {
            fprintf(stderr, "cmif sanitize: %s\n", err);
            return EXIT_USAGE;
        }
    }
    if (!model) {
        fprintf(stderr, "cmif sanitize: -m MODEL.gguf is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    char *text = NULL;
    size_t len = 0;
    if (file) {
        if (optind < argc) {
            fprintf(stderr, "cmif sanitize: give either -f FILE or TEXT, not both\n");
            return EXIT_USAGE;
        }
        if (!(text = read_all(file, &len))) return EXIT_RUNTIME;
    } else {
        if (optind >= argc) {
            fprintf(stderr, "cmif sanitize: no text given\n");
            usage(stderr);
            return EXIT_USAGE;
        }
        for (int i = optind; i < argc; i++) len += strlen(argv[i]) + 1;
        text = calloc(len + 1, 1);
        if (!text) { fprintf(stderr, "cmif sanitize: out of memory\n"); return EXIT_RUNTIME; }
        len = 0;
        for (int i = optind; i < argc; i++) {
            size_t l = strlen(argv[i]);
            if (i > optind) text[len++] = ' ';
            memcpy(text + len, argv[i], l);
            len += l;
            /* argv is readable by other users in /proc/PID/cmdline: shorten that window
             * (-f FILE or -f - keeps the text off the command line altogether). */
            core_wipe(argv[i], l);
        }
    }
    /* A seeded core prints its own "NOT private" warning when the sanitizer starts. */

    struct core *c;
    if (core_open(&c, model, &o, err, sizeof err) != 0) {
        fprintf(stderr, "cmif sanitize: %s\n", err);
        core_wipe(text, len);
        free(text);
        return EXIT_RUNTIME;
    }
    struct core_batch b = {0};
    int rc = core_encode(c, text, len, CORE_SEG_USER, 0, &b, err, sizeof err);
    int lead_space = len > 0 && text[0] == ' ';
    core_wipe(text, len);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "cmif sanitize: %s%s\n", err,
                rc == CORE_EBUDGET ? "; shorten the message, lower --eps, or start a new session"
                                   : "");
        core_batch_free(&b);
        core_close(c);
        return rc == CORE_EBUDGET ? EXIT_BUDGET : EXIT_RUNTIME;
    }
    /* Line 1: the sanitized text (pieces as reported: newlines shown as \n). */
    for (size_t i = 0; i < b.n; i++) {
        const char *s = b.rep[i].sent;
        if (i == 0 && !lead_space && s[0] == ' ') s++;
        fputs(s, stdout);
    }
    fputc('\n', stdout);
    size_t cnt[4] = {0};
    printf("%-4s %-20s %-20s %-9s %-6s %s\n", "#", "original", "sent", "treatment", "eps", "cluster");
    for (size_t i = 0; i < b.n; i++) {
        const struct core_tok_report *r = &b.rep[i];
        if (r->kind >= 0 && r->kind < 4) cnt[r->kind]++;
        char orig[64], sent[64];
        snprintf(orig, sizeof orig, "'%s'", r->orig);
        snprintf(sent, sizeof sent, "'%s'", r->sent);
        /* printf pads by bytes; widen by the UTF-8 continuation bytes so columns line up. */
        printf("%-4zu %-*s %-*s %-9s %-6g %d\n", i, 20 + cont_bytes(orig), orig,
               20 + cont_bytes(sent), sent, core_kind_name(r->kind), r->eps, r->cluster_size);
    }
    printf("tokens %zu: replaced %zu, kept %zu, public %zu, control %zu\n", b.n,
           cnt[CORE_TOK_REPLACED], cnt[CORE_TOK_KEPT], cnt[CORE_TOK_PUBLIC], cnt[CORE_TOK_CONTROL]);
    printf("mechanism %s, ε %g per sanitized token, message ε %g (%zu tokens x %g), "
           "budget spent %g of %g, cluster size K = %d%s\n",
           core_mech_name(core_mechanism(c)), core_eps(c), b.msg_eps,
           cnt[CORE_TOK_REPLACED] + cnt[CORE_TOK_KEPT], core_eps(c), core_budget_spent(c),
           core_budget_total(c), o.cluster_size, o.seeded ? " [SEEDED: NOT PRIVATE]" : "");
    printf("public set in force: pieces made only of whitespace and ASCII punctuation "
           "(assets/public-tokens.txt; `cmif sanitize --help` lists it)\n");
    core_batch_free(&b);
    core_close(c);
    return EXIT_OK;
}

const struct cmd_entry cmd_sanitize_entry = {
    "sanitize",
    "sanitize -m MODEL [--eps E] [--budget B] [--mechanism M] [--cluster-size K] [--seed N] TEXT",
    "sanitize text as the chat would send it and show the per-token privacy report",
    cmd_sanitize_exec,
};
