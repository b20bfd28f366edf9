/* cmif: entry point. Dispatches to a subcommand; with no subcommand, opens the chat. */
#include <stdio.h>
#include <string.h>

#include "app/cmd.h"

const struct cmd_entry *const cmd_table[] = {
    &cmd_chat_entry,     &cmd_generate_entry,     &cmd_tokenize_entry, &cmd_info_entry,
    &cmd_sanitize_entry, &cmd_eval_privacy_entry, &cmd_train_entry,    NULL,
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cmif [SUBCOMMAND] [OPTIONS]\n\n"
               "cmif is a confidential terminal chat for local Llama-family models: your input\n"
               "is tokenized and sanitized with differential privacy before the model sees it.\n\n"
               "Subcommands (default: chat):\n");
    for (int i = 0; cmd_table[i]; i++)
        fprintf(f, "  %-13s %s\n", cmd_table[i]->name, cmd_table[i]->help);
    fprintf(f, "\nUsage of each:\n");
    for (int i = 0; cmd_table[i]; i++) fprintf(f, "  cmif %s\n", cmd_table[i]->usage);
    fprintf(f, "\n`cmif SUBCOMMAND --help` describes its flags. --version prints the version.\n");
    if (f == stdout) {
        /* Every flag of every subcommand, the default (chat) first with its keys and
         * commands; `man cmif` has them all too. */
        for (int i = 0; cmd_table[i]; i++) {
            char *help_argv[] = { (char *)cmd_table[i]->name, (char *)"--help", NULL };
            fprintf(f, "\n── cmif %s ──\n", cmd_table[i]->name);
            fflush(f);
            cmd_table[i]->exec(2, help_argv);
            fflush(f);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return EXIT_OK;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("cmif %s\n", CMIF_VERSION);
        return EXIT_OK;
    }
    if (argc >= 2 && argv[1][0] != '-') {
        for (int i = 0; cmd_table[i]; i++)
            if (!strcmp(argv[1], cmd_table[i]->name)) return cmd_table[i]->exec(argc - 1, argv + 1);
        fprintf(stderr, "cmif: unknown subcommand '%s'\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* No subcommand: the chat, with every argument passed through. */
    argv[0] = (char *)"chat";
    return cmd_chat_entry.exec(argc, argv);
}
