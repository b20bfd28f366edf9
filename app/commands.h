/* app/commands: the chat's /commands, one table with help text (as tmux keeps its
 * cmd_entry table). The same table serves the full-screen chat and scripted sessions;
 * what differs (printing, the panel) goes through struct cmds_session's callbacks. */
#ifndef CMIF_APP_COMMANDS_H
#define CMIF_APP_COMMANDS_H

#include <stddef.h>

struct chat;
struct core;

enum { CMDS_INFO = 0, CMDS_ERROR = 1 };

struct cmds_session {
    struct chat *chat;
    struct core *core;
    const char *model_name;
    const char *device_name;
    /* The per-user ledger the core charges (NULL: --no-ledger), for /budget reset. */
    const char *ledger_path;
    /* Output of a command (one message, may hold newlines). */
    void (*print)(void *ctx, int level, const char *msg);
    /* The UI's part: NULL in scripted sessions. */
    void (*toggle_panel)(void *ctx);
    void (*cleared)(void *ctx);
    /* /restore on|off: whether answers show the user's own words for substitutes. */
    void (*set_restore)(void *ctx, int on);
    /* /set markdown on|off: answers drawn as Markdown (on 1) or exactly as written (0);
     * on -1 changes nothing. Returns the setting now in force. NULL: there is no screen
     * (line mode and scripts always show answers as written). */
    int (*set_markdown)(void *ctx, int on);
    /* /retry: start a new answer to the last message (chat_retry; the UI streams it). 0, or
     * -1 with err. NULL: /retry is not available here. */
    int (*retry)(void *ctx, char *err, size_t errlen);
    /* /edit: put text in the input line to change and send again. NULL: text is shown. */
    void (*edit)(void *ctx, const char *text);
    /* /copy: hand text to the terminal's clipboard (OSC 52). 0, or -1 when there is no
     * terminal to take it (a file is written instead). NULL: always the file. */
    int (*copy)(void *ctx, const char *text, size_t n);
    void *ctx;
    /* Every input of the session (messages and commands), for /save-history. */
    char **inputs;
    size_t ninputs, inputs_cap;
    int bang;   /* set by cmds_run while a "/name!" command runs */
};

enum { CMDS_OK = 0, CMDS_QUIT = 1, CMDS_FAIL = -1 };
/* Commands that must not run while an answer streams (they touch the conversation). */
#define CMDS_IDLE 1
/* Commands that take a "!" ("/save! FILE": overwrite an existing file). */
#define CMDS_BANG 2

struct cmds_entry {
    const char *name;       /* without the slash */
    const char *args;       /* "X", "FILE", "" */
    const char *help;
    int flags;
    int (*exec)(struct cmds_session *s, const char *arg);
};

extern const struct cmds_entry cmds_table[];

int cmds_is_command(const char *line);
/* The /set names (for /show and Tab completion), NULL-terminated. */
extern const char *const cmds_set_names[];
/* Runs one "/name args" line: CMDS_OK, CMDS_QUIT, or CMDS_FAIL (message printed). busy:
 * an answer is streaming (commands flagged CMDS_IDLE are refused). */
int cmds_run(struct cmds_session *s, const char *line, int busy);
/* Finds an entry by exact name or unique prefix; NULL otherwise. */
const struct cmds_entry *cmds_find(const char *name, size_t len);

/* The longest message accepted (bytes); longer ones are refused before tokenizing. */
#define CMDS_MAX_MESSAGE (64 * 1024)
/* 0 when line may be sent or run; -1 with err saying the limit (never quoting the line). */
int cmds_check_length(const char *line, char *err, size_t errlen);

/* Records an input line for /save-history. 0 or -1 (out of memory). */
int cmds_record(struct cmds_session *s, const char *line);
void cmds_session_free(struct cmds_session *s);
/* Writes inputs as a script: one per line, a multi-line message continued with a trailing
 * backslash (the format --script reads), through savefile_open_private (flags:
 * SAVEFILE_OVERWRITE or 0). */
int cmds_write_script(const struct cmds_session *s, const char *path, int flags, char *err,
                      size_t errlen);

#endif
