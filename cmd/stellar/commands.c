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
    {"run", cmd_run, "run",
     "processors=,queues=,no-scheduler,verbose,http=,http-token=,"
     "http-read-token=,no-http",
     0, 0, "", "compile the tasks; run TaskProcessors and the scheduler",
     "Compiles every changed modules/*/tasks/*.c of the app into\n"
     ".stellar/cache/, loads and validates the tasks, then runs the\n"
     "TaskProcessors and the scheduler until SIGINT or SIGTERM. A second\n"
     "signal stops waiting for running jobs. Settings come from the tasks\n"
     "section of stellar.json (README.md lists every key); the flags\n"
     "override them. With an http section ({\"listen\": \"127.0.0.1:8080\",\n"
     "\"token\": ...}) or --http, it also serves the dashboard, the JSON API\n"
     "under /api/ and /metrics. If stellar.json's address is in use (another\n"
     "`stellar run` of the app serves it), it says so in one line and runs\n"
     "without HTTP; an address given with --http that is in use is an error.\n"
     "\n"
     "Options:\n"
     "  --processors N     TaskProcessor threads (0: none, scheduler only)\n"
     "  --queues a,b       queues in priority order ('*': all)\n"
     "  --no-scheduler     do not move delayed jobs or enqueue periodic tasks\n"
     "  --verbose          log debug messages too\n"
     "  --http HOST:PORT   serve HTTP there (port 0: any free port)\n"
     "  --http-token T     require this bearer token (else\n"
     "                     $STELLAR_HTTP_TOKEN, else http.token); needed to\n"
     "                     bind other than loopback (then 16+ characters)\n"
     "  --http-read-token T  a token that may only read (dashboard, /api,\n"
     "                     /metrics); else $STELLAR_HTTP_READ_TOKEN, else\n"
     "                     http.readToken\n"
     "  --no-http          do not serve HTTP, whatever stellar.json says\n"
     "\n"
     "Example:\n"
     "  cd examples/app && stellar run --processors 4 --http 127.0.0.1:8080\n",
     NULL},
    {"dashboard", cmd_dashboard, "run", "http=,http-token=,http-read-token=", 0,
     0, "", "serve the dashboard and HTTP API, without processors",
     "Serves the dashboard at /, the JSON API under /api/ and /metrics over\n"
     "the backend until SIGINT or SIGTERM. Runs no TaskProcessors and no\n"
     "scheduler; with an app, its tasks are loaded so that the API can\n"
     "list and enqueue them. Listens on --http, else the app's\n"
     "http.listen, else 127.0.0.1:8080.\n"
     "\n"
     "Options:\n"
     "  --http HOST:PORT   where to listen (port 0: any free port)\n"
     "  --http-token T     require this bearer token (else\n"
     "                     $STELLAR_HTTP_TOKEN, else http.token)\n"
     "  --http-read-token T  a token that may only read (else\n"
     "                     $STELLAR_HTTP_READ_TOKEN, else http.readToken)\n"
     "\n"
     "Example:\n"
     "  stellar dashboard --backend redis://127.0.0.1:6379 --http "
     "127.0.0.1:9090\n",
     NULL},

    /* -------------------------------------------------------- enqueue --- */
    {"enqueue", cmd_enqueue, "enqueue", "", 1, 3, "TASK [PARAMS_JSON] [QUEUE]",
     "queue a job to run now",
     "Arguments:\n"
     "  TASK          the task name (checked against the app's tasks when\n"
     "                there is an app)\n"
     "  PARAMS_JSON   a JSON object passed to the task (default {})\n"
     "                @FILE reads it from FILE, - from standard input\n"
     "  QUEUE         the queue (default: the task's queue, else 'default')\n"
     "\n"
     "Example:\n"
     "  stellar enqueue appendLine '{\"path\":\"/tmp/o\",\"line\":\"hi\"}'\n"
     "  stellar enqueue appendLine @params.json\n"
     "  produce-params | stellar enqueue appendLine -\n",
     NULL},
    {"enqueueAt", cmd_enqueue_at, "enqueue", "", 2, 4,
     "TIMESTAMP_MS TASK [PARAMS_JSON] [QUEUE]",
     "queue a job to run at a time (ms since the epoch)",
     "Arguments:\n"
     "  TIMESTAMP_MS  when to run, in milliseconds since 1970-01-01 UTC\n"
     "  TASK          the task name\n"
     "  PARAMS_JSON   a JSON object passed to the task (default {})\n"
     "                @FILE reads it from FILE, - from standard input\n"
     "  QUEUE         the queue (default: the task's queue, else 'default')\n"
     "\n"
     "Example:\n"
     "  stellar enqueueAt $(( $(date +%s) * 1000 + 60000 )) sayHello\n",
     NULL},
    {"enqueueIn", cmd_enqueue_in, "enqueue", "", 2, 4,
     "DELAY_MS TASK [PARAMS_JSON] [QUEUE]",
     "queue a job to run after a delay (ms)",
     "Arguments:\n"
     "  DELAY_MS      how long to wait, in milliseconds (>= 0)\n"
     "  TASK          the task name\n"
     "  PARAMS_JSON   a JSON object passed to the task (default {})\n"
     "                @FILE reads it from FILE, - from standard input\n"
     "  QUEUE         the queue (default: the task's queue, else 'default')\n"
     "\n"
     "Example:\n"
     "  stellar enqueueIn 1500 appendLine "
     "'{\"path\":\"/tmp/o\",\"line\":\"hi\"}'\n",
     NULL},

    /* -------------------------------------------------------- inspect --- */
    {"tasks", cmd_tasks, "inspect", "", 0, 0, "", "list the app's tasks",
     "Compiles and loads the app's tasks as `run` does, and lists them:\n"
     "name, queue, frequency (ms; 0: not periodic) and description.\n"
     "\n"
     "Example:\n"
     "  stellar tasks --app examples/app\n",
     NULL},
    {"stats", cmd_stats, "inspect", "", 0, 0, "",
     "processed and failed counters, in total and per worker",
     "Example:\n"
     "  stellar stats --backend sqlite:./stellar.db\n",
     NULL},
    {"failed", cmd_failed, "inspect", "", 0, 2, "[START] [STOP]",
     "list failed jobs",
     "Arguments:\n"
     "  START   first index (default 0; negative counts from the end)\n"
     "  STOP    last index, inclusive (default -1: the last)\n"
     "\n"
     "Example:\n"
     "  stellar failed 0 9 --json\n",
     NULL},
    {"queues", cmd_queues, "inspect", "", 0, 0, "",
     "list queues and how many jobs wait in each",
     "LATENCY: how long the oldest job has waited; PAUSED: whether a\n"
     "pause holds the queue (see `stellar pause`). --json prints\n"
     "[{\"queue\", \"length\", \"latency_ms\", \"paused\", \"paused_until\"}]\n"
     "(paused_until: ms, or null when not paused or paused until resumed).\n"
     "\n"
     "Example:\n"
     "  stellar queues\n",
     NULL},
    {"length", cmd_length, "inspect", "", 1, 1, "QUEUE",
     "how many jobs wait in a queue",
     "Arguments:\n"
     "  QUEUE   the queue name (exit code 3 if there is no such queue)\n"
     "\n"
     "Example:\n"
     "  stellar length default\n",
     NULL},
    {"workers", cmd_workers, "inspect", "", 0, 0, "",
     "list TaskProcessors and what they are working on",
     "Example:\n"
     "  stellar workers\n",
     NULL},
    {"timestamps", cmd_timestamps, "inspect", "", 0, 0, "",
     "list the times that hold delayed jobs",
     "Example:\n"
     "  stellar timestamps\n",
     NULL},
    {"failedCount", cmd_failed_count, "inspect", "", 0, 0, "",
     "how many failed jobs there are",
     "Prints the number; --json prints {\"count\": n}.\n"
     "\n"
     "Example:\n"
     "  stellar failedCount\n",
     NULL},
    {"queued", cmd_queued, "inspect", "", 1, 3, "QUEUE [START] [STOP]",
     "list the jobs waiting in a queue",
     "Arguments:\n"
     "  QUEUE   the queue (exit code 3 if there is no such queue)\n"
     "  START   first index (default 0; negative counts from the end)\n"
     "  STOP    last index, inclusive (default -1: the last)\n"
     "\n"
     "Example:\n"
     "  stellar queued default 0 9\n",
     NULL},
    {"details", cmd_details, "inspect", "", 0, 0, "",
     "every queue's length and every worker's job",
     "Example:\n"
     "  stellar details --json\n",
     NULL},
    {"workingOn", cmd_working_on, "inspect", "", 1, 1, "WORKER",
     "what one worker is working on",
     "Arguments:\n"
     "  WORKER   a worker name as `stellar workers` lists it (exit code 3\n"
     "           if there is no such worker)\n"
     "\n"
     "--json prints {\"run_at\", \"queue\", \"payload\"}, or null when idle.\n"
     "\n"
     "Example:\n"
     "  stellar workingOn myhost:4242+1\n",
     NULL},
    {"allWorkingOn", cmd_all_working_on, "inspect", "", 0, 0, "",
     "what every worker is working on",
     "--json prints {\"<worker>\": \"started\" (idle) or {\"run_at\",\n"
     "\"queue\", \"payload\"}}.\n"
     "\n"
     "Example:\n"
     "  stellar allWorkingOn\n",
     NULL},
    {"delayedAt", cmd_delayed_at, "inspect", "", 1, 1, "TS_MS",
     "list the jobs delayed at one timestamp",
     "Arguments:\n"
     "  TS_MS   a timestamp in ms since the epoch, as `stellar timestamps`\n"
     "          lists them (on Redis: its whole second)\n"
     "\n"
     "Example:\n"
     "  stellar delayedAt 1767225600000\n",
     NULL},
    {"allDelayed", cmd_all_delayed, "inspect", "", 0, 0, "",
     "list every delayed job by timestamp",
     "--json prints {\"<ms>\": [payloads...], ...}.\n"
     "\n"
     "Example:\n"
     "  stellar allDelayed --json\n",
     NULL},
    {"scheduledAt", cmd_scheduled_at, "inspect", "", 2, 3,
     "QUEUE TASK [PARAMS_JSON]", "when a job is delayed to",
     "Arguments:\n"
     "  QUEUE         the job's queue\n"
     "  TASK          the task (exit code 3 if neither the app nor any\n"
     "                delayed job knows it)\n"
     "  PARAMS_JSON   its params exactly as enqueued, member order\n"
     "                included (default {})\n"
     "                @FILE reads it from FILE, - from standard input\n"
     "\n"
     "Example:\n"
     "  stellar scheduledAt default appendLine "
     "'{\"path\":\"/tmp/o\",\"line\":\"hi\"}'\n",
     NULL},
    {"locks", cmd_locks, "inspect", "", 0, 0, "",
     "list every lock with its expiry",
     "Lists the plugins' locks (lock:..., workerslock:...) with their value\n"
     "and when they expire.\n"
     "\n"
     "Example:\n"
     "  stellar locks\n",
     NULL},

    {"schedules", cmd_schedules, "inspect", "", 0, 2, "[pause|resume NAME]",
     "list cron schedules; pause or resume one",
     "Lists every cron schedule of the app (its tasks with \"cron\" and the\n"
     "\"schedules\" of stellar.json) with its expression, zone, task, next\n"
     "fire time in its zone and in UTC, last fire and whether it is paused.\n"
     "`pause NAME` stops the schedule's ticks from queueing jobs, for every\n"
     "process sharing the backend, until `resume NAME`; ticks that pass\n"
     "while it is paused are skipped.\n"
     "\n"
     "Examples:\n"
     "  stellar schedules\n"
     "  stellar schedules pause nightly-report\n",
     NULL},
    {"cron", cmd_cron, "inspect", "tz=,from=,count=", 2, 2, "next EXPR",
     "the next fire times of a cron expression in a time zone",
     "Arguments:\n"
     "  EXPR   5 fields (minute hour day-of-month month day-of-week), 6\n"
     "         (seconds first) or @yearly @monthly @weekly @daily @hourly;\n"
     "         docs/schedules.md has the syntax and the DST rules\n"
     "\n"
     "Options:\n"
     "  --tz ZONE    an IANA time zone (default: the machine's local zone)\n"
     "  --from MS    start after this time, ms since the epoch (default now)\n"
     "  --count N    how many fire times (default 5)\n"
     "\n"
     "Prints one line per fire time: ms since the epoch and the local time\n"
     "in ISO 8601 with its UTC offset; with --json an array of ms.\n"
     "\n"
     "Example:\n"
     "  stellar cron next '0 3 * * *' --tz America/New_York --count 3\n",
     NULL},

    /* --------------------------------------------------------- manage --- */
    {"del", cmd_del, "manage", "", 2, 4, "QUEUE TASK [PARAMS_JSON] [COUNT]",
     "remove queued jobs of a task with these params",
     "Arguments:\n"
     "  QUEUE         the queue (exit code 3 if there is no such queue)\n"
     "  TASK          the task (exit code 3 if neither the app nor any job\n"
     "                in the queue knows it)\n"
     "  PARAMS_JSON   the params exactly as enqueued, member order\n"
     "                included (default {})\n"
     "                @FILE reads it from FILE, - from standard input\n"
     "  COUNT         remove at most this many, from the head (default 0:\n"
     "                all); `del QUEUE TASK N` means params {}\n"
     "\n"
     "Example:\n"
     "  stellar del default appendLine "
     "'{\"path\":\"/tmp/o\",\"line\":\"hi\"}' 1\n",
     NULL},
    {"delDelayed", cmd_del_delayed, "manage", "", 2, 3,
     "QUEUE TASK [PARAMS_JSON]",
     "remove delayed jobs of a task with these "
     "params",
     "Prints the timestamps they were removed from.\n"
     "\n"
     "Arguments:\n"
     "  QUEUE         the jobs' queue\n"
     "  TASK          the task (exit code 3 if neither the app nor any\n"
     "                delayed job knows it)\n"
     "  PARAMS_JSON   the params exactly as enqueued (default {})\n"
     "                @FILE reads it from FILE, - from standard input\n"
     "\n"
     "Example:\n"
     "  stellar delDelayed default sayHello\n",
     NULL},
    {"delDelayedAt", cmd_del_delayed_at, "manage", "", 1, 1, "TS_MS",
     "remove every delayed job at one timestamp",
     "Also accepted as delDelayesAt, the guide's spelling.\n"
     "\n"
     "Arguments:\n"
     "  TS_MS   a timestamp in ms since the epoch, as `stellar timestamps`\n"
     "          lists them (exit code 3 if no job is delayed at it)\n"
     "\n"
     "Example:\n"
     "  stellar delDelayedAt 1767225600000\n",
     "delDelayesAt"},
    {"delAllDelayed", cmd_del_all_delayed, "manage", "", 0, 0, "",
     "remove every delayed job",
     "Example:\n"
     "  stellar delAllDelayed\n",
     NULL},
    {"delQueue", cmd_del_queue, "manage", "", 1, 1, "QUEUE",
     "remove a queue and all its jobs",
     "Arguments:\n"
     "  QUEUE   the queue (exit code 3 if there is no such queue)\n"
     "\n"
     "Example:\n"
     "  stellar delQueue old-queue\n",
     NULL},
    {"enqueueRecurrentJob", cmd_enqueue_recurrent, "manage", "", 1, 1, "TASK",
     "(re)start a periodic task: one copy queued now",
     "Removes the task's queued and delayed copies and queues one now, so\n"
     "there is never more than one. Loads the app's tasks as `run` does.\n"
     "\n"
     "Arguments:\n"
     "  TASK   a periodic task of the app (exit code 3 if unknown, 2 if it\n"
     "         is not periodic)\n"
     "\n"
     "Example:\n"
     "  stellar enqueueRecurrentJob sayHello\n",
     NULL},
    {"stopRecurrentJob", cmd_stop_recurrent, "manage", "", 1, 1, "TASK",
     "stop a periodic task: remove its waiting copies",
     "A processor running it right now still queues its next run. Loads\n"
     "the app's tasks as `run` does.\n"
     "\n"
     "Arguments:\n"
     "  TASK   a periodic task of the app (exit code 3 if unknown)\n"
     "\n"
     "Example:\n"
     "  stellar stopRecurrentJob sayHello\n",
     NULL},
    {"pause", cmd_pause, "manage", "for=", 1, 1, "QUEUE [--for MS]",
     "stop every TaskProcessor taking jobs from a queue",
     "A paused queue still accepts jobs, and due delayed jobs still move\n"
     "into it, but no Stellar TaskProcessor (of any process sharing the\n"
     "backend) takes a job from it; running jobs finish. The pause is\n"
     "stored in the backend (node-resque workers do not know it).\n"
     "\n"
     "Options:\n"
     "  --for MS   resume by itself after MS milliseconds\n"
     "\n"
     "Example:\n"
     "  stellar pause emails --for 60000\n",
     NULL},
    {"resume", cmd_resume, "manage", "", 1, 1, "QUEUE",
     "let TaskProcessors take jobs from a paused queue again",
     "Example:\n"
     "  stellar resume emails\n",
     NULL},
    {"limit", cmd_limit, "manage", "concurrency=,rate=,clear", 1, 1,
     "TARGET [--concurrency N] [--rate N/DURATION] | --clear",
     "set or clear a global concurrency or rate limit",
     "Arguments:\n"
     "  TARGET   queue:NAME (the jobs of a queue) or task:NAME (the jobs\n"
     "           of a task, in any queue)\n"
     "\n"
     "Options:\n"
     "  --concurrency N      at most N jobs of TARGET run at once, across\n"
     "                       every process sharing the backend\n"
     "  --rate N/DURATION    at most N jobs of TARGET start in any window of\n"
     "                       DURATION (a sliding window); DURATION is a\n"
     "                       number with ms, s, m or h\n"
     "  --clear              remove the limit (exit code 3 if none)\n"
     "\n"
     "A job held back by a limit stays at the head of its queue; processors\n"
     "go on to other queues. stellar.json may declare limits under\n"
     "\"limits\", which `stellar run` applies at start.\n"
     "\n"
     "Example:\n"
     "  stellar limit task:sendEmail --concurrency 2 --rate 100/1m\n",
     NULL},
    {"limits", cmd_limits, "inspect", "", 0, 0, "",
     "list the concurrency and rate limits with their current use",
     "RUNNING: the jobs of the target running now (permits held);\n"
     "STARTED: the jobs that started in the current rate window.\n"
     "\n"
     "Example:\n"
     "  stellar limits\n",
     NULL},
    {"delLock", cmd_del_lock, "manage", "", 1, 1, "NAME", "remove one lock",
     "Arguments:\n"
     "  NAME   the lock as `stellar locks` lists it (lock:... or\n"
     "         workerslock:...; exit code 3 if there is no such lock)\n"
     "\n"
     "Example:\n"
     "  stellar delLock 'lock:sendEmail:default:[{}]'\n",
     NULL},
    {"removeFailed", cmd_remove_failed, "manage", "all", 0, 1, "INDEX | --all",
     "remove a failed job (or all of them)",
     "Arguments:\n"
     "  INDEX   the job's index in `stellar failed` (negative counts from\n"
     "          the end; exit code 3 if out of range)\n"
     "  --all   every failed job, in batches; jobs that fail meanwhile are\n"
     "          removed too\n"
     "\n"
     "Example:\n"
     "  stellar removeFailed 0\n",
     NULL},
    {"retryAndRemoveFailed", cmd_retry_failed, "manage", "all", 0, 1,
     "INDEX | --all", "queue a failed job again and remove it from failed",
     "Arguments:\n"
     "  INDEX   the job's index in `stellar failed` (negative counts from\n"
     "          the end; exit code 3 if out of range)\n"
     "  --all   every failed job, in batches; jobs that fail meanwhile are\n"
     "          retried too, but a retried job that fails again is left in\n"
     "          failed\n"
     "\n"
     "Example:\n"
     "  stellar retryAndRemoveFailed --all\n",
     NULL},
    {"cleanOldWorkers", cmd_clean_old_workers, "manage", "requeue", 1, 1,
     "AGE_MS [--requeue]", "remove dead workers; their jobs go to failed",
     "Workers whose last ping is older than AGE_MS are removed; the job\n"
     "each was running goes to failed (\"Worker Timeout (killed\n"
     "manually)\"), or back to the head of its queue with --requeue.\n"
     "\n"
     "Arguments:\n"
     "  AGE_MS      milliseconds without a ping (>= 0)\n"
     "  --requeue   put their jobs back in their queues instead\n"
     "\n"
     "Example:\n"
     "  stellar cleanOldWorkers 3600000 --requeue\n",
     NULL},

    /* ------------------------------------------------------- scaffold --- */
    {"new", cmd_new, "scaffold", "", 1, 1, "DIR",
     "create an app: DIR/stellar.json and DIR/modules/",
     "Writes DIR/stellar.json (a tasks section: backend, queues,\n"
     "maxTaskProcessors, scheduler, timeout; and an http section: the\n"
     "dashboard on 127.0.0.1:8080) and creates DIR/modules/. README.md\n"
     "lists every setting of stellar.json.\n"
     "Refuses if DIR/stellar.json exists. With --backend, the URL is\n"
     "written as the app's backend.\n"
     "\n"
     "Example:\n"
     "  stellar new myapp && cd myapp\n",
     NULL},
    {"makeTask", cmd_make_task, "scaffold",
     "module=,description=,queue=,frequency=,lang=", 1, 1,
     "NAME --module=MODULE [--lang=c|python|node|sh]",
     "write a task skeleton to modules/MODULE/tasks/NAME.c (or .json)",
     "Arguments:\n"
     "  NAME                 the task name, e.g. sendEmail or auth.check\n"
     "\n"
     "Options:\n"
     "  --module MODULE      the module folder (required)\n"
     "  --description TEXT   the task's description\n"
     "  --queue QUEUE        the task's queue (default 'default')\n"
     "  --frequency MS       > 0 makes the task periodic (default 0)\n"
     "  --lang LANG          c (default), or python, node or sh: a command\n"
     "                       task, NAME.json and an executable script\n"
     "                       beside it (docs/tasks.md)\n"
     "\n"
     "Refuses to overwrite an existing file.\n"
     "\n"
     "Example:\n"
     "  stellar makeTask sendEmail --module=mail\n",
     NULL},
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
        if (cli_name_eq(name, cli_commands[i].name) ||
            (cli_commands[i].alias && cli_name_eq(name, cli_commands[i].alias)))
            return &cli_commands[i];
    return NULL;
}

void cli_print_help(FILE *f)
{
    size_t g, i;
    int width = 0;

    for (i = 0; i < cli_ncommands; i++)
        if ((int)strlen(cli_commands[i].name) > width)
            width = (int)strlen(cli_commands[i].name);

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
            fprintf(f, "  %-*s  %s\n", width, cli_commands[i].name,
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
