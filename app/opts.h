/* app/opts: llama.cpp-style command-line flags shared by the subcommands.
 *
 * A subcommand says which of the common flags it accepts (a mask of OPT_* bits), may add
 * its own flags through a small table and a callback, and gets the parsed values in one
 * struct opts. Positional arguments are collected in order (o->args / o->n_args), as many as
 * the command line holds. Flags may come before, between or after them unless the command
 * asks (OPT_ARGS_END_FLAGS) for everything after its first argument to be taken as text.
 *
 *   struct opts o;
 *   opts_defaults(&o);
 *   int r = opts_parse(&o, argc, argv, OPT_MODEL | OPT_PROMPT | OPT_SAMPLING, extra, ctx,
 *                      err, sizeof err);
 *   r == 1: --help was given (print opts_usage and exit 0); r < 0: usage error (exit 2). */
#ifndef CMIF_APP_OPTS_H
#define CMIF_APP_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "gpu/sampler.h"

/* Groups of common flags a subcommand can accept. */
enum {
    OPT_MODEL = 1u << 0,    /* -m/--model PATH */
    OPT_PROMPT = 1u << 1,   /* -p/--prompt TEXT, -f/--file PATH */
    OPT_PREDICT = 1u << 2,  /* -n/--n-predict N */
    OPT_THREADS = 1u << 3,  /* -t/--threads N */
    OPT_CTX = 1u << 4,      /* -c/--ctx-size N */
    OPT_SAMPLING = 1u << 5, /* -s/--seed, --temp, --top-k, --top-p, --min-p,
                               --repeat-penalty, --repeat-last-n */
    OPT_DEVICE = 1u << 6,   /* --device auto|cpu|cl[:N] */
    /* Not a group of flags: the first positional argument ends the flags, so it and every
     * word after it are arguments, "-5" or "--eps" included (getopt's "+"). For commands
     * whose arguments are free text (`cmif sanitize the price is -5`). "--" still ends the
     * flags earlier. */
    OPT_ARGS_END_FLAGS = 1u << 7,
    /* The sanitizer's settings, into o->core and o->no_ledger: --eps, --budget, --sanitize,
     * --unit, --mechanism, --cluster-size, --dp-seed, --no-ledger. */
    OPT_PRIVACY = 1u << 8,
    /* The core's memory, into o->core: --core-mem BYTES (K/M/G), --require-locked. */
    OPT_CORE_MEM = 1u << 9,
    OPT_ENGINE = OPT_MODEL | OPT_THREADS | OPT_CTX | OPT_DEVICE,
};

/* A subcommand-specific flag. long_name without dashes ("pieces"); short_name 0 for none;
 * has_arg 1 when it takes a value, OPTS_ARG_OPTIONAL when it may ("--flag=V", or "--flag V"
 * where V does not start with '-'; only for commands that take no free arguments). The
 * callback gets id and the value (NULL without). */
#define OPTS_ARG_OPTIONAL 2
struct opts_extra {
    const char *long_name;
    char short_name;
    int has_arg;
    int id;
    const char *help;       /* "--pieces          print the pieces too" style line */
};
typedef int (*opts_extra_fn)(void *ctx, int id, const char *val, char *err, size_t errlen);

/* For a command whose refused values say it all (its usage follows only an unknown flag):
 * opts_parse with opts_refusal_fn and a struct opts_refusal around the command's own
 * callback; refused then tells a refused value from an unknown flag. */
struct opts_refusal {
    opts_extra_fn fn;
    void *ctx;
    int refused;
};
int opts_refusal_fn(void *ctx, int id, const char *val, char *err, size_t errlen);

struct opts {
    const char *model;          /* NULL when not given */
    const char *prompt;         /* -p text (may be ""); NULL when not given */
    const char *prompt_file;    /* -f path; NULL when not given */
    int n_predict;              /* -1 = until end of generation or context full */
    int threads;                /* 0 = all cores */
    int ctx;                    /* 0 = model default (min(ctx_train, 4096)) */
    struct sampler_params sp;   /* seed already resolved (random when -s was not given) */
    int seed_given;
    int device;                 /* enum dec_device */
    int cl_index;               /* -1 = first usable */
    struct core_options core;   /* core_defaults, then OPT_PRIVACY and OPT_CORE_MEM */
    int no_ledger;              /* --no-ledger */
    int bad_value;              /* opts_parse failed on a known flag's value, not an unknown flag */
    /* The positional arguments, in order. opts_parse gathers them at the front of argv
     * (argv[1..1+n_args), as GNU getopt permutes argv) and args points there: no copy and no
     * limit on their number; the strings are argv's own, so a command may wipe them. */
    char **args;
    int n_args;
};

void opts_defaults(struct opts *o);

/* Parses argv[1..argc). Returns 0, 1 for --help/-h, or -1 with err naming the flag. Reorders
 * argv's pointers (never its strings): the positional arguments end up first. */
int opts_parse(struct opts *o, int argc, char **argv, unsigned accept,
               const struct opts_extra *extra, opts_extra_fn extra_fn, void *ctx, char *err,
               size_t errlen);

/* A text that may be secret was given on the command line: says on stderr that other users
 * can read argv and names the form that keeps it off it (e.g. "--system-file FILE"). */
void opts_argv_warning(const char *flag, const char *instead);
/* Overwrites an argv string (from then on /proc/PID/cmdline no longer shows it). */
void opts_wipe_arg(const char *arg);

/* Prints the help lines of the accepted common flags and of the extra table. */
void opts_usage(FILE *f, unsigned accept, const struct opts_extra *extra);

/* Reads the prompt: -p text (its argv string is wiped once copied), or the contents of -f
 * ("-": stdin) (malloc'd, NUL-terminated). *text is NULL when neither was given. 0 or -1
 * with err. */
int opts_read_prompt(const struct opts *o, char **text, size_t *len, char *err, size_t errlen);

/* Reads all of f (called name in errors) into a malloc'd, NUL-terminated buffer of *len
 * bytes; more than max_gib GiB is refused. 0, or -1 with err (out of memory, too large,
 * read error). The prompt file, `cmif tokenize`'s input, `cmif train`'s corpus and --script. */
int opts_read_stream(FILE *f, const char *name, unsigned max_gib, char **text, size_t *len,
                     char *err, size_t errlen);
/* The same for the file at path, opened and closed here. */
int opts_read_file(const char *path, unsigned max_gib, char **text, size_t *len, char *err,
                   size_t errlen);

/* Parses a whole decimal/float value strictly (the whole string must be consumed). */
int opts_int(const char *s, long lo, long hi, long *out);
int opts_float(const char *s, double lo, double hi, double *out);

/* The bundled model, relative to the source tree (and to the directory above the binary). */
#define OPTS_DEFAULT_MODEL "assets/models/cmif-tiny.gguf"

/* The model a command runs when -m is absent: given, else $CMIF_MODEL, else the bundled
 * model under the current directory or next to the binary (buf holds that path). NULL when
 * none is found, after saying on stderr (prefixed by cmd) how to give one. */
const char *opts_find_model(const char *given, char *buf, size_t cap, const char *cmd);

/* The end of a model command's parsing, for opts_parse's result r (not 1) and its err: no
 * positional argument, and o->model set by opts_find_model (into buf). 0, or -1 after saying
 * why on stderr (prefixed by cmd): the caller prints its usage and exits 2. */
int opts_need_model(struct opts *o, int r, const char *err, const char *cmd, char *buf,
                    size_t cap);

#endif
