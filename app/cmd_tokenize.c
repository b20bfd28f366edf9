/* cmif tokenize: prints the token ids of a text under a model's vocabulary, as llama.cpp's
 * llama-tokenize does; --pieces shows what each token stands for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cmd.h"
#include "app/opts.h"
#include "core/core.h"
#include "ui/utf8.h"
#include "core/gguf.h"

enum { X_PIECES = 1, X_NO_BOS, X_SPECIAL };

static const struct opts_extra extras[] = {
    {"pieces", 0, 0, X_PIECES, "--pieces               one line per token: id<TAB>'piece'"},
    {"no-bos", 0, 0, X_NO_BOS, "--no-bos               do not add BOS even when the model asks for it"},
    {"special", 0, 0, X_SPECIAL, "--special              map special token texts (<s>, <|eot_id|>) to their ids"},
    {NULL, 0, 0, 0, NULL},
};

struct tk_flags {
    int pieces, no_bos, special;
};

static int on_extra(void *ctx, int id, const char *val, char *err, size_t errlen)
{
    struct tk_flags *f = ctx;
    (void)val;
    (void)err;
    (void)errlen;
    if (id == X_PIECES) f->pieces = 1;
    else if (id == X_NO_BOS) f->no_bos = 1;
    else if (id == X_SPECIAL) f->special = 1;
    return 0;
}

static const char usage_line[] =
    "tokenize -m MODEL [--pieces] [--no-bos] [--special] (TEXT | -p TEXT | -f FILE | -)";

static void usage(FILE *f)
{
    fprintf(f, "usage: cmif %s\n\nPrints the token ids of TEXT (- or -f - reads stdin).\n\n", usage_line);
    opts_usage(f, OPT_MODEL | OPT_PROMPT, extras);
}

/* Prints a piece with control bytes, quotes, backslashes and stray non-UTF-8 bytes escaped. */
static void print_escaped(const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80) {
            uint32_t cp;
            size_t k = utf8_decode(p + i, n - i, &cp);
            if (k) {
                fwrite(p + i, 1, k, stdout);
                i += k;
            } else {
                printf("\\x%02x", c);
                i++;
            }
            continue;
        }
        switch (c) {
        case '\n': fputs("\\n", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\'': fputs("\\'", stdout); break;
        default:
            if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
            else putchar(c);
        }
        i++;
    }
}

static int cmd_tokenize_exec(int argc, char **argv)
{
    struct opts o;
    struct tk_flags fl = {0, 0, 0};
    char err[512];
    opts_defaults(&o);
    int r = opts_parse(&o, argc, argv, OPT_MODEL | OPT_PROMPT, extras, on_extra, &fl, err, sizeof err);
    if (r == 1) {
        usage(stdout);
        return EXIT_OK;
    }
    if (r < 0) {
        fprintf(stderr, "cmif tokenize: %s\n", err);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!o.model) {
        fprintf(stderr, "cmif tokenize: -m MODEL is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    int sources = (o.prompt != NULL) + (o.prompt_file != NULL) + o.n_args;
    if (sources != 1) {
        fprintf(stderr, "cmif tokenize: give exactly one text (TEXT, -p TEXT, -f FILE or -)\n");
        usage(stderr);
        return EXIT_USAGE;
    }

    char *text = NULL;
    size_t len = 0;
    const char *from_file = o.prompt_file;
    if (o.n_args == 1 && strcmp(o.args[0], "-") == 0) from_file = "-";
    if (o.n_args == 1 && !from_file) {
        len = strlen(o.args[0]);
        text = malloc(len + 1);
        if (!text) {
            fprintf(stderr, "cmif tokenize: out of memory\n");
            return EXIT_RUNTIME;
        }
        memcpy(text, o.args[0], len + 1);
    } else {
        if (from_file && strcmp(from_file, "-") == 0)
            r = opts_read_stream(stdin, "stdin", 1, &text, &len, err, sizeof err);
        else if (from_file)
            r = opts_read_file(from_file, 1, &text, &len, err, sizeof err);
        else
            r = opts_read_prompt(&o, &text, &len, err, sizeof err);
        if (r != 0) {
            fprintf(stderr, "cmif tokenize: %s\n", err);
            return EXIT_RUNTIME;
        }
    }

    int rc = EXIT_RUNTIME;
    struct gguf *g = NULL;
    struct core_vocab *t = NULL;
    int32_t *ids = NULL;
    if (gguf_open(&g, o.model, err, sizeof err) != 0) {
        fprintf(stderr, "cmif tokenize: %s: %s\n", o.model, err);
        goto out;
    }
    if (core_vocab_open(&t, g, err, sizeof err) != 0) {
        fprintf(stderr, "cmif tokenize: %s: %s\n", o.model, err);
        goto out;
    }
    /* Three ids per byte covers byte fallback of an escaped space; plus BOS/EOS. */
    size_t max = 3 * len + 8;
    ids = malloc(max * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "cmif tokenize: out of memory for %zu bytes of text\n", len);
        goto out;
    }
    size_t n = 0;
    int add_bos = !fl.no_bos && core_vocab_add_bos(t);
    if (core_vocab_encode(t, text, len, add_bos, fl.special, ids, max, &n, err, sizeof err) != 0) {
        fprintf(stderr, "cmif tokenize: %s\n", err);
        goto out;
    }
    if (!fl.pieces) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    } else {
        for (size_t i = 0; i < n; i++) {
            char buf[512];
            size_t k = core_vocab_piece(t, NULL, ids[i], 1, buf, sizeof buf);
            if (k > sizeof buf) k = sizeof buf;
            printf("%d\t'", ids[i]);
            print_escaped(buf, k);
            fputs("'\n", stdout);
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "cmif tokenize: write error: %s\n", strerror(errno));
        goto out;
    }
    rc = EXIT_OK;
out:
    free(ids);
    core_vocab_close(t);
    gguf_close(g);
    free(text);
    return rc;
}

const struct cmd_entry cmd_tokenize_entry = {
    "tokenize", usage_line, "print the token ids (or pieces) of a text", cmd_tokenize_exec,
};
