/*
 * commands.c: the table of `stellar` commands and the help built from it.
 *
 * A command is one row: its name (the seed's spelling; matching ignores case,
 * '-' and '_', so `enqueue-in` finds `enqueueIn`), its function, its group in
 * the global help, the flags it accepts, how many positional arguments it
 * takes, and its help texts. The argument parser checks flags and argument
 * counts from the row, so a function only checks what the values mean.
 */
#include "cli.h"

#include <ctype.h>
#include <string.h>

#define GLOBAL_OPTIONS                                                         \
    "Global options (anywhere on the line):\n"                                 \
    "  --backend URL   sqlite:PATH or redis://host[:port][/db]; else\n"        \
    "                  $STELLAR_BACKEND, else the app's tasks.backend, else\n" \
    "                  sqlite:./stellar.db\n"                                  \
    "  --app DIR       the app (a folder with stellar.json); else the\n"       \
    "                  current folder if it has one\n"                         \
    "  --json          machine-readable output\n"                              \
    "  -h, --help      this help\n"

const cli_cmd cli_commands[] = {
    /* ------------------------------------------------------------ run --- */
    {"run", cmd_run, "run", "processors=,queues=,no-scheduler,verbose", 0, 0,
     "", "compile the app's tasks and run TaskProcessors and the scheduler",
     "Compiles every changed modules/*/tasks/*.c of the app into\n"
     ".stellar/cache/, loads and validates the tasks, then runs the\n"
     "TaskProcessors and the scheduler until SIGINT or SIGTERM. A second\n"
     "signal stops waiting for running jobs. Settings come from the tasks\n"
     "section of stellar.json; the flags override them.\n"
     "\n"
     "Options:\n"
     "  --processors N   TaskProcessor threads (0: none, scheduler only)\n"
     "  --queues a,b     queues in priority order ('*': all)\n"
     "  --no-scheduler   do not move delayed jobs or enqueue periodic tasks\n"
     "  --verbose        log debug messages too\n"
     "\n"
     "Example:\n"
     "  cd examples/app && stellar run --processors 4\n"},

    /* -------------------------------------------------------- enqueue --- */
    {"enqueue", cmd_enqueue, "enqueue", "", 1, 3, "TASK [PARAMS_JSON] [QUEUE]",
     "queue a job to run now",
     "Arguments:\n"
     "  TASK          the task name (checked against the app's tasks when\n"
     "                there is an app)\n"
     "  PARAMS_JSON   a JSON object passed to the task (default {})\n"
     "  QUEUE         the queue (default: the task's queue, else 'default')\n"
     "\n"
     "Example:\n"
     "  stellar enqueue appendLine '{\"path\":\"/tmp/o\",\"line\":\"hi\"}'\n"},
    {"enqueueAt", cmd_enqueue_at, "enqueue", "", 2, 4,
     "TIMESTAMP_MS TASK [PARAMS_JSON] [QUEUE]",
     "queue a job to run at a time (ms since the epoch)",
     "Arguments:\n"
     "  TIMESTAMP_MS  when to run, in milliseconds since 1970-01-01 UTC\n"
     "  TASK          the task name\n"
     "  PARAMS_JSON   a JSON object passed to the task (default {})\n"
     "  QUEUE         the queue (default: the task's queue, else 'default')\n"
     "\n"
     "Example:\n"
     "  stellar enqueueAt $(( $(date +%s) * 1000 + 60000 )) sayHello\n"},
    {"enqueueIn", cmd_enqueue_in, "enqueue", "", 2, 4,
     "DELAY_MS TASK [PARAMS_JSON] [QUEUE]",
     "queue a job to run after a delay (ms)",
     "Arguments:\n"
     "  DELAY_MS      how long to wait, in milliseconds (>= 0)\n"
     "  TASK          the task name\n"
     "  PARAMS_JSON   a JSON object passed to the task (default {})\n"
     "  QUEUE         the queue (default: the task's queue, else 'default')\n"
     "\n"
     "Example:\n"
     "  stellar enqueueIn 1500 appendLine "
     "'{\"path\":\"/tmp/o\",\"line\":\"hi\"}'\n"},

    /* -------------------------------------------------------- inspect --- */
    {"tasks", cmd_tasks, "inspect", "", 0, 0, "", "list the app's tasks",
     "Compiles and loads the app's tasks as `run` does, and lists them:\n"
     "name, queue, frequency (ms; 0: not periodic) and description.\n"
     "\n"
     "Example:\n"
     "  stellar tasks --app examples/app\n"},
    {"stats", cmd_stats, "inspect", "", 0, 0, "",
     "processed and failed counters, in total and per worker",
     "Example:\n"
     "  stellar stats --backend sqlite:./stellar.db\n"},
    {"failed", cmd_failed, "inspect", "", 0, 2, "[START] [STOP]",
     "list failed jobs",
     "Arguments:\n"
     "  START   first index (default 0; negative counts from the end)\n"
     "  STOP    last index, inclusive (default -1: the last)\n"
     "\n"
     "Example:\n"
     "  stellar failed 0 9 --json\n"},
    {"queues", cmd_queues, "inspect", "", 0, 0, "",
     "list queues and how many jobs wait in each",
     "Example:\n"
     "  stellar queues\n"},
    {"length", cmd_length, "inspect", "", 1, 1, "QUEUE",
     "how many jobs wait in a queue",
     "Arguments:\n"
     "  QUEUE   the queue name (exit code 3 if there is no such queue)\n"
     "\n"
     "Example:\n"
     "  stellar length default\n"},
    {"workers", cmd_workers, "inspect", "", 0, 0, "",
     "list TaskProcessors and what they are working on",
     "Example:\n"
     "  stellar workers\n"},
    {"timestamps", cmd_timestamps, "inspect", "", 0, 0, "",
     "list the times that hold delayed jobs",
     "Example:\n"
     "  stellar timestamps\n"},

    /* ------------------------------------------------------- scaffold --- */
    {"new", cmd_new, "scaffold", "", 1, 1, "DIR",
     "create an app: DIR/stellar.json and DIR/modules/",
     "Writes DIR/stellar.json (a tasks section: backend, queues,\n"
     "minTaskProcessors, maxTaskProcessors, scheduler, timeout) and creates\n"
     "DIR/modules/. Refuses if DIR/stellar.json exists. With --backend, the\n"
     "URL is written as the app's backend.\n"
     "\n"
     "Example:\n"
     "  stellar new myapp && cd myapp\n"},
    {"makeTask", cmd_make_task, "scaffold",
     "module=,description=,queue=,frequency=", 1, 1, "NAME --module=MODULE",
     "write a task skeleton to modules/MODULE/tasks/NAME.c",
     "Arguments:\n"
     "  NAME                 the task name, e.g. sendEmail or auth.check\n"
     "\n"
     "Options:\n"
     "  --module MODULE      the module folder (required)\n"
     "  --description TEXT   the task's description\n"
     "  --queue QUEUE        the task's queue (default 'default')\n"
     "  --frequency MS       > 0 makes the task periodic (default 0)\n"
     "\n"
     "Refuses to overwrite an existing file.\n"
     "\n"
     "Example:\n"
     "  stellar makeTask sendEmail --module=mail\n"},
};

const size_t cli_ncommands = sizeof cli_commands / sizeof cli_commands[0];

static const char *const groups[] = {"run", "enqueue", "inspect", "manage",
                                     "scaffold"};

bool cli_name_eq(const char *a, const char *b)
{
    for (;;) {
        while (*a == '-' || *a == '_')
            a++;
        while (*b == '-' || *b == '_')
            b++;
        if (!*a || !*b) return !*a && !*b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
        a++;
        b++;
    }
}

const cli_cmd *cli_find(const char *name)
{
    size_t i;
    for (i = 0; i < cli_ncommands; i++)
        if (cli_name_eq(name, cli_commands[i].name)) return &cli_commands[i];
    return NULL;
}

void cli_print_help(FILE *f)
{
    size_t g, i;

    fprintf(f,
            "stellar %s: background tasks, Resque-compatible\n\n"
            "Usage: stellar COMMAND [ARGS] [OPTIONS]\n",
            STELLAR_VERSION);
    for (g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        bool any = false;
        for (i = 0; i < cli_ncommands; i++) {
            if (strcmp(cli_commands[i].group, groups[g]) != 0) continue;
            if (!any) fprintf(f, "\n%s:\n", groups[g]);
            any = true;
            fprintf(f, "  %-12s %s\n", cli_commands[i].name,
                    cli_commands[i].help);
        }
    }
    fprintf(f, "\n" GLOBAL_OPTIONS
               "\nCommand names ignore case and dashes (enqueue-in = "
               "enqueueIn).\n"
               "`stellar help COMMAND` shows a command's arguments and an "
               "example.\n"
               "Exit codes: 0 ok, 1 failure, 2 usage, 3 not found.\n");
}

void cli_print_cmd_help(FILE *f, const cli_cmd *cmd)
{
    fprintf(f,
            "Usage: stellar %s%s%s [OPTIONS]\n\n%c%s.\n\n%s\n" GLOBAL_OPTIONS,
            cmd->name, *cmd->args ? " " : "", cmd->args,
            toupper((unsigned char)cmd->help[0]), cmd->help + 1, cmd->usage);
}
