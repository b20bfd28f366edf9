/* Placeholder until this subcommand's issue lands: it says so and fails. */
#include <stdio.h>

#include "app/cmd.h"

static int cmd_info_exec(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "cmif: '%s' is not available in this build yet\n", argv[0]);
    return EXIT_RUNTIME;
}

const struct cmd_entry cmd_info_entry = {
    "info", "info ...", "(not available yet)", cmd_info_exec,
};
