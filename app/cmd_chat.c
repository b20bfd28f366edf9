/* app/cmd_chat: `cmif [chat] -m MODEL` — the default subcommand. Parses its options, opens
 * the model behind the confidential core, then runs either the full-screen chat (app/tui,
 * on a terminal) or a scripted session (--script FILE, or stdin that is not a terminal). */
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "app/autosave.h"
#include "app/chat.h"
#include "app/cmd.h"
#include "app/commands.h"
#include "app/engine.h"
#include "app/histfile.h"
#include "app/linechat.h"
#include "app/opts.h"
#include "app/savefile.h"
#include "app/script.h"
#include "app/session.h"
#include "app/template.h"
#include "app/tui.h"
#include "app/xdg.h"
#include "core/core.h"
#include "gpu/decoder.h"
#include "ui/plain.h"

#define DEFAULT_MODEL OPTS_DEFAULT_MODEL
#define CHAT_DEFAULT_PREDICT 400
#define CHAT_FLAGS (OPT_ENGINE | OPT_PREDICT | OPT_SAMPLING | OPT_PRIVACY | OPT_CORE_MEM)

enum {
    X_TEMPLATE = 1, X_SYSTEM, X_SYSTEMFILE, X_SCRIPT, X_REPORT, X_REPORTFILE, X_NOCOLOR, X_NOHIST,
    X_HIST, X_DUMP, X_HEADLESS, X_DELAY, X_QUIET, X_RESUME, X_AUTOSAVE, X_PLAIN,
};

static const struct opts_extra extras[] = {
    { "template", 0, 1, X_TEMPLATE,
      "    --template NAME    llama2, llama3, mistral, chatml, zephyr or plain (default: from the model)" },
    { "system", 0, 1, X_SYSTEM, "    --system TEXT      system prompt (sanitized like your messages); other users\n                       can read argv: prefer --system-file" },
    { "system-file", 0, 1, X_SYSTEMFILE, "    --system-file F    read the system prompt from F (- = stdin)" },
    { "script", 0, 1, X_SCRIPT,
      "    --script FILE      replay FILE (one message or /command a line) without a screen" },
    { "report", 0, 1, X_REPORT, "    --report json      scripted: print the per-token privacy report as JSON" },
    { "report-file", 0, 1, X_REPORTFILE, "    --report-file F    scripted: also write the JSON report to F" },
    { "no-color", 0, 0, X_NOCOLOR, "    --no-color         no colours (also when NO_COLOR is set)" },
    { "plain", 0, 0, X_PLAIN,
      "    --plain            answers exactly as the model wrote them (no Markdown display:\n"
      "                       bold, code blocks, lists)" },
    { "history", 0, 0, X_HIST, "    --history          keep the input history across sessions, sealed (encrypted)\n                       in $XDG_STATE_HOME/cmif/history; off by default (Up still\n                       recalls this session's inputs, wiped at exit and on /clear)" },
    { "no-history", 0, 0, X_NOHIST, "    --no-history       no history file (the default)" },
    { "screen-dump", 0, 1, X_DUMP, "    --screen-dump F    write the screen as text to F at exit and on SIGUSR1" },
    { "headless", 0, 1, X_HEADLESS,
      "    --headless CxR     full-screen chat on a virtual CxR screen, keys from stdin (tests)" },
    { "delay-ms", 0, 1, X_DELAY, "    --delay-ms N       pause N ms after each generated token (demos, tests)" },
    { "resume", 0, 1, X_RESUME,
      "    --resume FILE      go on with a session saved by /save FILE.json: the context is\n"
      "                       replayed from the saved sanitized inputs (no ε is charged)" },
    { "autosave", 0, OPTS_ARG_OPTIONAL, X_AUTOSAVE,
      "    --autosave [FILE]  at exit (/quit, Ctrl-D, SIGTERM, SIGHUP) save the session as\n"
      "                       /save FILE.json does (0600; --resume FILE goes on). FILE must\n"
      "                       be new, or the one --resume read; without FILE: a new file in\n"
      "                       $XDG_STATE_HOME/cmif/sessions" },
    { "quiet", 'q', 0, X_QUIET, "-q, --quiet            no progress messages" },
    { NULL, 0, 0, 0, NULL },
};

struct chat_opts {
    struct core_options core;
    const char *template_name;
    char *system;   /* our copy (the argv string is wiped) */
    const char *script;
    const char *report_file;
    const char *dump;
    const char *resume;
    int autosave;
    const char *autosave_path;
    int report_json;
    int color;
    int plain;
    int history;
    int quiet;
    char ledger[4096];
    char history_off[600];   /* why the history file is not used (shown in the chat) */
    char history_note[800];  /* where it is kept, sealed */
    int headless_cols, headless_rows;
    int delay_ms;
};

static int on_extra(void *ctx, int id, const char *v, char *err, size_t errlen)
{
    struct chat_opts *c = ctx;
    long l;
    switch (id) {
    case X_TEMPLATE:
        if (tmpl_parse(v) < 0) {
            snprintf(err, errlen, "--template: unknown '%s' (llama2, llama3, mistral, chatml, zephyr, plain)", v);
            return -1;
        }
        c->template_name = v;
        return 0;
    case X_SYSTEM:
    case X_SYSTEMFILE: {
        char *t = NULL;
        size_t n = 0;
        if (c->system) {
            snprintf(err, errlen, "give --system or --system-file once");
            return -1;
        }
        if (id == X_SYSTEMFILE) {
            if ((strcmp(v, "-") ? opts_read_file(v, 1, &t, &n, err, errlen)
                                : opts_read_stream(stdin, "stdin", 1, &t, &n, err, errlen)) != 0)
                return -1;
            while (n && (t[n - 1] == '\n' || t[n - 1] == '\r')) t[--n] = 0;
        } else {
            if (*v) opts_argv_warning("--system", "--system-file FILE");
            if (!(t = strdup(v))) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            opts_wipe_arg(v);
        }
        c->system = t;
        return 0;
    }
    case X_SCRIPT: c->script = v; return 0;
    case X_REPORT:
        if (strcmp(v, "json") != 0) {
            snprintf(err, errlen, "--report: only 'json' is supported, not '%s'", v);
            return -1;
        }
        c->report_json = 1;
        return 0;
    case X_REPORTFILE: c->report_file = v; return 0;
    case X_NOCOLOR: c->color = 0; return 0;
    case X_PLAIN: c->plain = 1; return 0;
    case X_NOHIST: c->history = 0; return 0;
    case X_HIST: c->history = 1; return 0;
    case X_DUMP: c->dump = v; return 0;
    case X_HEADLESS:
        if (sscanf(v, "%dx%d", &c->headless_cols, &c->headless_rows) != 2 ||
            c->headless_cols < 20 || c->headless_rows < 6 || c->headless_cols > 1000 ||
            c->headless_rows > 1000) {
            snprintf(err, errlen, "--headless: expected COLSxROWS (at least 20x6), got '%s'", v);
            return -1;
        }
        return 0;
    case X_DELAY:
        if (opts_int(v, 0, 60000, &l) != 0) {
            snprintf(err, errlen, "--delay-ms: '%s' is not an integer from 0 to 60000", v);
            return -1;
        }
        c->delay_ms = (int)l;
        return 0;
    case X_QUIET: c->quiet = 1; return 0;
    case X_RESUME: c->resume = v; return 0;
    case X_AUTOSAVE:
        c->autosave = 1;
        c->autosave_path = v;
        return 0;
    }
    snprintf(err, errlen, "internal: unknown flag id %d", id);
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cmif [chat] [-m MODEL.gguf] [OPTIONS]\n"
               "  The confidential chat. Your messages are tokenized and sanitized with\n"
               "  differential privacy inside the confidential core before the model sees them.\n"
               "  On a terminal: full screen. With --script FILE, or when stdin is not a\n"
               "  terminal: each line is one message or /command, the transcript goes to stdout.\n"
               "  Model: -m, else $CMIF_MODEL, else " DEFAULT_MODEL ".\n"
               "  An answer stops at the model's end of turn or after -n tokens (default here %d).\n\n",
            CHAT_DEFAULT_PREDICT);
    opts_usage(f, CHAT_FLAGS, extras);
    fprintf(f, "\nkeys: Enter sends; a trailing \\ continues on the next line; Ctrl-C stops the\n"
               "  answer; Ctrl-D or /quit leaves; PgUp/PgDn or the wheel scroll; F2 the panel;\n"
               "  Up/Down/Ctrl-R recall inputs (--history keeps them, sealed); Tab completes\n"
               "  a /command and the names /mechanism, /sanitize and /set take.\n"
               "commands:\n");
    for (int i = 0; cmds_table[i].name; i++) {
        char head[64];
        snprintf(head, sizeof head, "/%s %s", cmds_table[i].name, cmds_table[i].args);
        fprintf(f, "  %-20s %s\n", head, cmds_table[i].help);
    }
    fprintf(f, "exit status: 0 ok, 1 runtime error, 2 bad usage, 3 privacy budget ran out\n");
}

/* --- scripted sessions ------------------------------------------------------------------ */

static void script_print(void *ctx, int level, const char *msg)
{
    if (level == CMDS_ERROR) {
        fprintf(stderr, "cmif: %s\n", msg);
        return;
    }
    if (ctx) plain_note(ctx, msg);
}

static int run_script(struct engine *e, FILE *in, const char *name, const struct chat_opts *co)
{
    char err[512];
    struct script sc;
    if (script_load(in, name, &sc, err, sizeof err) != 0) {
        fprintf(stderr, "cmif: %s\n", err);
        return EXIT_RUNTIME;
    }
    FILE *rf = NULL;
    /* The report holds what the user typed in clear: owner only. */
    if (co->report_file &&
        !(rf = savefile_open_private(co->report_file, SAVEFILE_OVERWRITE, err, sizeof err))) {
        fprintf(stderr, "cmif: %s\n", err);
        script_free(&sc);
        return EXIT_RUNTIME;
    }
    struct plain pl;
    plain_init(&pl, stdout);
    struct plain *plp = co->report_json ? NULL : &pl;
    struct cmds_session sess = { .chat = e->chat, .core = e->core, .model_name = e->name,
                                 .ledger_path = co->core.ledger_path,
                                 .device_name = dec_device_name(e->dec), .print = script_print,
                                 .ctx = plp };
    struct script_opts so = { .json = co->report_json, .report = rf, .model_name = e->name };
    int rc = script_run(&sc, e->chat, &sess, plp, &so, stderr);
    if (rf && fclose(rf) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "cmif: %s: write failed\n", co->report_file);
        rc = EXIT_RUNTIME;
    }
    cmds_session_free(&sess);
    script_free(&sc);
    fflush(stdout);
    return rc;
}

/* The chat as plain lines (app/linechat): the prompt on the terminal, the transcript on
 * stdout (also repeating the user's lines when stdout is a file). */
static int run_lines(struct engine *e, const struct chat_opts *co)
{
    int out_tty = isatty(1);
    if (dec_fallback_note(e->dec)) fprintf(stderr, "cmif: %s\n", dec_fallback_note(e->dec));
    if (co->core.seeded)
        fprintf(stderr, "cmif: --dp-seed: the sanitizer's noise is reproducible: NOT private\n");
    struct plain pl;
    plain_init(&pl, stdout);
    struct cmds_session sess = { .chat = e->chat, .core = e->core, .model_name = e->name,
                                 .ledger_path = co->core.ledger_path,
                                 .device_name = dec_device_name(e->dec), .print = script_print,
                                 .ctx = &pl };
    char msg[512];
    snprintf(msg, sizeof msg, "cmif %s: %s. Messages are sanitized (%s, ε %g per %s) before "
             "the model sees them. /help lists commands; \"\"\" starts and ends a multi-line "
             "message; Ctrl-D quits.", CMIF_VERSION, e->name,
             core_mech_name(core_mechanism(e->core)), core_eps(e->core),
             core_unit_name(core_unit(e->core)));
    plain_note(&pl, msg);
    struct linechat_opts lo = { .in = stdin, .prompt = out_tty ? stdout : stderr,
                                .echo = !out_tty };
    int rc = linechat_run(e->chat, &sess, &pl, &lo);
    cmds_session_free(&sess);
    fflush(stdout);
    return rc;
}

/* --autosave: the session to its file, said on stderr (the screen is gone by now). */
static void autosave_at_exit(const struct autosave *as, const struct engine *e)
{
    char path[4200], err[1024];
    int r = autosave_write(as, e->chat, e->name, path, sizeof path, err, sizeof err);
    if (r < 0) fprintf(stderr, "cmif: --autosave: %s\n", err);
    else if (r == 0 && *as->path && strcmp(path, as->path) != 0)
        fprintf(stderr, "cmif: --autosave: %s appeared meanwhile and was left alone; the "
                        "session is in %s (readable only by you): cmif --resume %s\n",
                as->path, path, path);
    else if (r == 0)
        fprintf(stderr, "cmif: session saved to %s (readable only by you): cmif --resume %s "
                        "goes on from here\n", path, path);
}

static int cmd_chat_exec(int argc, char **argv)
{
    struct opts o;
    struct chat_opts co;
    char err[1024] = "";
    memset(&co, 0, sizeof co);
    co.color = !(getenv("NO_COLOR") && *getenv("NO_COLOR"));
    opts_defaults(&o);
    /* A base model rarely ends its answer: without a cap its first answer would fill the
     * whole context and push the conversation out. -n -1 still asks for "until the end". */
    o.n_predict = CHAT_DEFAULT_PREDICT;
    int r = opts_parse(&o, argc, argv, CHAT_FLAGS, extras, on_extra, &co, err, sizeof err);
    if (r == 1) {
        usage(stdout);
        return EXIT_OK;
    }
    if (r < 0 || o.n_args > 0) {
        fprintf(stderr, "cmif: %s\n", r < 0 ? err : "unexpected argument (messages go in the chat)");
        fprintf(stderr, "usage: cmif [chat] [-m MODEL.gguf] [OPTIONS]; cmif --help lists them\n");
        return EXIT_USAGE;
    }
    co.core = o.core;
    co.core.quiet = co.quiet;
    char mbuf[4200];
    const char *model = opts_find_model(o.model, mbuf, sizeof mbuf, "cmif");
    if (!model) return EXIT_USAGE;
    int scripted = co.script || (!isatty(0) && !co.headless_cols);
    /* A terminal that cannot hold the layout (TERM=dumb or unset), or stdout that is not a
     * terminal: the chat as plain lines instead of a screen drawn where it cannot be. */
    const char *term = getenv("TERM");
    int dumb = !term || !*term || !strcmp(term, "dumb");
    int lines = !scripted && !co.headless_cols && (dumb || !isatty(1));
    if ((co.report_json || co.report_file) && !scripted) {
        fprintf(stderr, "cmif: --report and --report-file apply to scripted sessions (--script)\n");
        return EXIT_USAGE;
    }
    struct autosave as = { 0 };
    if (co.autosave && autosave_prepare(&as, co.autosave_path, co.resume, err, sizeof err) != 0) {
        fprintf(stderr, "cmif: %s\n", err);
        return EXIT_USAGE;
    }
    FILE *sf = NULL;
    if (co.script && !(sf = strcmp(co.script, "-") ? fopen(co.script, "r") : stdin)) {
        fprintf(stderr, "cmif: %s: %s\n", co.script, strerror(errno));
        return EXIT_RUNTIME;
    }
    setlocale(LC_ALL, "");
    if (!scripted && !lines) co.core.quiet = 1;   /* progress lines would land on the screen */
    if (!o.no_ledger) {
        if (xdg_path(XDG_STATE, "ledger", 1, co.ledger, sizeof co.ledger, err, sizeof err) != 0) {
            fprintf(stderr, "cmif: the privacy ledger: %s (or run with --no-ledger)\n", err);
            if (sf && sf != stdin) fclose(sf);
            return EXIT_RUNTIME;
        }
        co.core.ledger_path = co.ledger;
    }
    struct histfile *hf = NULL;
    if (!scripted && !lines) histfile_open_user(co.history, &hf, co.history_note, sizeof co.history_note,
                                       co.history_off, sizeof co.history_off);
    struct engine e;
    struct chat_params cp = { .n_predict = o.n_predict, .sp = o.sp, .system = co.system,
                              .delay_ms = co.delay_ms };
    /* A script or a line chat answers its first message at once: the sanitizer is built
     * during the start. The screen appears first and builds it with the first message. */
    if (engine_open(&e, model, &o, &co.core, scripted || lines ? ENGINE_PREPARE : 0, err,
                    sizeof err) != 0 ||
        engine_start_chat(&e, co.template_name, &cp, err, sizeof err) != 0) {
        engine_close(&e);
        histfile_close(hf);
        fprintf(stderr, "cmif: %s\n", err);
        if (sf && sf != stdin) fclose(sf);
        return EXIT_RUNTIME;
    }
    char resume_note[600] = "";
    if (co.resume) {
        size_t nm;
        if (session_load(e.chat, co.resume, &nm, err, sizeof err) != 0) {
            engine_close(&e);
            histfile_close(hf);
            fprintf(stderr, "cmif: --resume: %s\n", err);
            if (sf && sf != stdin) fclose(sf);
            free(co.system);
            return EXIT_RUNTIME;
        }
        snprintf(resume_note, sizeof resume_note,
                 "resumed %s: %zu message%s replayed from the saved sanitized inputs (no ε "
                 "charged)", co.resume, nm, nm == 1 ? "" : "s");
    }
    /* The chat holds its own copy now. */
    if (co.system) {
        sodium_memzero(co.system, strlen(co.system));
        free(co.system);
        co.system = NULL;
    }
    int rc;
    if (scripted) {
        if (dec_fallback_note(e.dec)) fprintf(stderr, "cmif: %s\n", dec_fallback_note(e.dec));
        if (*resume_note) fprintf(stderr, "cmif: %s\n", resume_note);
        rc = run_script(&e, sf ? sf : stdin, co.script ? co.script : "stdin", &co);
    } else if (lines) {
        if (*resume_note) fprintf(stderr, "cmif: %s\n", resume_note);
        rc = run_lines(&e, &co);
    } else {
        struct tui_options to = { .chat = e.chat, .core = e.core, .dec = e.dec, .model_name = e.name,
                                  .history = hf, .history_note = co.history_note,
                                  .history_off = co.history_off, .dump = co.dump, .color = co.color,
                                  .plain = co.plain,
                                  .headless_cols = co.headless_cols,
                                  .headless_rows = co.headless_rows, .seeded = co.core.seeded,
                                  .ledger_path = co.core.ledger_path,
                                  .resume_note = *resume_note ? resume_note : NULL };
        int sig;
        rc = tui_run(&to, &sig);
        histfile_close(hf);
        autosave_at_exit(&as, &e);
        if (sig) {
            /* Leave the way the signal asked, after the engine is closed (the core wiped). */
            engine_close(&e);
            signal(sig, SIG_DFL);
            raise(sig);
        }
    }
    if (scripted || lines) autosave_at_exit(&as, &e);
    if (sf && sf != stdin) fclose(sf);
    engine_close(&e);
    return rc;
}

const struct cmd_entry cmd_chat_entry = {
    "chat",
    "chat [-m MODEL] [--script FILE [--report json]] [--sanitize S] [--eps E] [--budget B] ...",
    "the confidential chat (default): full screen, or scripted with --script / piped stdin",
    cmd_chat_exec,
};
