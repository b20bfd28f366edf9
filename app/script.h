/* app/script: scripted sessions. A script is a file in readline-history form: each line one
 * user message or one /command; blank lines and lines starting with '#' are skipped; a
 * line ending in a backslash continues on the next (a multi-line message). The same runner
 * serves --script FILE and a non-terminal stdin. */
#ifndef CMIF_APP_SCRIPT_H
#define CMIF_APP_SCRIPT_H

#include <stddef.h>
#include <stdio.h>

struct chat;
struct cmds_session;
struct plain;

struct script {
    char **items;      /* messages and commands, NUL-terminated */
    int *line;         /* line number (1-based) where each item starts */
    size_t n, cap;
};

/* Parses a whole script held in buf. 0, or -1 with err (out of memory, NUL byte). */
int script_parse(const char *buf, size_t len, struct script *s, char *err, size_t errlen);
/* Reads f to the end (at most 1 GiB, as a prompt file) and parses it. 0, or -1 with err. */
int script_load(FILE *f, const char *name, struct script *s, char *err, size_t errlen);
void script_free(struct script *s);

struct script_opts {
    int json;                 /* print the JSON report on stdout instead of the transcript */
    FILE *report;             /* also write the JSON report here (or NULL) */
    const char *model_name;
};

/* Runs every item: messages through chat_send, /commands through the table. The
 * transcript goes to pl (NULL: none). Returns an exit status: EXIT_OK, EXIT_RUNTIME,
 * EXIT_BUDGET (with a message on errf saying what was left). */
int script_run(const struct script *s, struct chat *chat, struct cmds_session *sess,
               struct plain *pl, const struct script_opts *o, FILE *errf);

/* Writes s as a JSON string literal (escaped; invalid UTF-8 bytes as U+FFFD). */
void script_json_str(FILE *f, const char *s, size_t n);

#endif
