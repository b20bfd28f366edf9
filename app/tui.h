/* app/tui: the full-screen chat's event loop. One poll(2) loop waits on the keyboard,
 * the generation thread's events (ui/queue), a signal pipe and the pipe stderr is sent to
 * while the screen is up. Keys go to readline (ui/input); a finished line runs a /command
 * (app/commands) or starts a turn with chat_submit, whose callbacks this module relays
 * through the queue so the answer streams into the transcript (ui/screen) on the UI
 * thread. The core's privacy report is converted here into the panel's own rows, which
 * keeps ui/ free of the core. All state lives in a struct tui, except the signal pipe's
 * write end, which the signal handler needs. */
#ifndef CMIF_APP_TUI_H
#define CMIF_APP_TUI_H

struct chat;
struct core;
struct decoder;
struct histfile;

struct tui_options {
    struct chat *chat;
    struct core *core;
    struct decoder *dec;
    const char *model_name;
    struct histfile *history;          /* --history: the sealed file; NULL: this session only */
    const char *history_note;          /* said in the transcript when there is one */
    const char *history_off;           /* a problem with it, said as an error; NULL or "": none */
    const char *dump;                  /* --screen-dump file (at exit and on SIGUSR1) or NULL */
    int color;
    int plain;                         /* --plain: answers as written, no Markdown display */
    int headless_cols, headless_rows;  /* > 0: a virtual screen with keys from stdin (tests) */
    int seeded;                        /* --dp-seed: warn that the noise is not private */
    const char *ledger_path;           /* the per-user ledger the core charges; NULL: none */
    const char *resume_note;           /* --resume: said after the restored conversation */
};

/* Runs the chat until the user leaves: EXIT_OK or EXIT_RUNTIME (app/cmd.h). When a
 * signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT) ended it, *exit_sig is that signal: the caller
 * closes the engine and re-raises it with its default action; otherwise *exit_sig is 0. */
int tui_run(const struct tui_options *o, int *exit_sig);

#endif
