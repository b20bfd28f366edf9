/* app/cmd: the subcommand table. One file per subcommand (app/cmd_NAME.c), each exporting
 * one cmd_entry, as tmux does for its commands. */
#ifndef CMIF_APP_CMD_H
#define CMIF_APP_CMD_H

/* Exit statuses shared by every subcommand. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_BUDGET = 3 };

struct cmd_entry {
    const char *name;
    const char *usage;     /* one line: "generate -m MODEL [-p TEXT] [-n N] ..." */
    const char *help;      /* one-line description for `cmif --help` */
    int (*exec)(int argc, char **argv);   /* argv[0] is the subcommand name */
};

extern const struct cmd_entry cmd_chat_entry;
extern const struct cmd_entry cmd_generate_entry;
extern const struct cmd_entry cmd_tokenize_entry;
extern const struct cmd_entry cmd_info_entry;
extern const struct cmd_entry cmd_sanitize_entry;
extern const struct cmd_entry cmd_eval_privacy_entry;
extern const struct cmd_entry cmd_train_entry;

extern const struct cmd_entry *const cmd_table[];

#define CMIF_VERSION "0.1.0"

#endif
