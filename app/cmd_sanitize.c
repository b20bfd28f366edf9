/* Placeholder until this subcommand's issue lands: it says so and fails. */
#include <stdio.h>

#include "app/cmd.h"

static int cmd_sanitize_exec(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "cmif: '%s' is not available in this build yet\n", argv[0]);
    return EXIT_RUNTIME;
}

const struct cmd_entry cmd_sanitize_entry = {
    "sanitize", "sanitize ...", "(not available yet)", cmd_sanitize_exec,
};
