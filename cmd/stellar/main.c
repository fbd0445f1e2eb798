/*
 * main.c: the `stellar` program. Parses the command line, then runs one
 * command from the table in commands.c; the exit code is the command's.
 *
 * Layout of cmd/stellar/:
 *   cli.h           what the files share
 *   commands.c      the command table and the help built from it
 *   args.c          options, arguments, one-line errors and exit codes
 *   app.c           the app folder, stellar.json, the backend, the logger
 *   build.c         compiling and loading the app's task modules
 *   output.c        JSON, tables and times
 *   cmd_*.c         the commands: enqueue, inspect (read-only queries),
 *                   delayed (delayed jobs), manage (changes), run, http
 *                   (the server in run, and dashboard), scaffold
 */
#include "cli.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    cli c = {0};
    int rc;

    c.log_level = STELLAR_LOG_WARN; /* `run` lowers it to INFO */
    rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) {
        cli_cleanup(&c);
        return rc;
    }
    if (c.version) {
        printf("stellar %s\n", STELLAR_VERSION);
    } else if (c.help || !c.cmd) {
        if (c.cmd)
            cli_print_cmd_help(stdout, c.cmd);
        else
            cli_print_help(c.help ? stdout : stderr);
        rc = c.help ? CLI_OK : CLI_USAGE;
    } else {
        rc = c.cmd->fn(&c);
    }
    cli_cleanup(&c);
    if (fflush(stdout) != 0 && rc == CLI_OK) rc = CLI_FAIL;
    return rc;
}
