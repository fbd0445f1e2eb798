/*
 * cli.h: what the files of the `stellar` program share.
 *
 * The program is a table of commands (commands.c). main.c parses the command
 * line into a `cli` (args.c), finds the app and the backend (app.c), and
 * calls the command's function, which returns the process exit code. A new
 * command is one row in the table plus one function; the helpers below give
 * it argument checks, the backend handle, the app's tasks and tables.
 */
#ifndef STELLAR_CLI_H
#define STELLAR_CLI_H

#include "stellar.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes. */
enum {
    CLI_OK = 0,       /* done */
    CLI_FAIL = 1,     /* the command failed (backend, compiler, I/O) */
    CLI_USAGE = 2,    /* bad arguments: one line on stderr */
    CLI_NOTFOUND = 3, /* unknown task, queue or index */
};

typedef struct cli cli;

typedef struct cli_cmd {
    const char *name;  /* the seed's spelling: "enqueueIn" */
    int (*fn)(cli *c); /* returns the exit code */
    const char *group; /* run, enqueue, inspect, manage, scaffold */
    const char *flags; /* command flags, "module=,force": '=' takes a value */
    int min_args;      /* positional arguments */
    int max_args;      /* -1: any number */
    const char *args;  /* "DELAY_MS TASK [PARAMS_JSON] [QUEUE]" */
    const char *help;  /* one line */
    const char *usage; /* arguments, options and an example, for --help */
    const char *alias; /* another accepted name (the guide's spelling), or
                          NULL */
} cli_cmd;

typedef struct cli_flag {
    char *name;        /* as spelled in the command's spec (owned) */
    const char *value; /* borrowed from argv; "" for a bare switch */
} cli_flag;

struct cli {
    const cli_cmd *cmd;

    /* Global options. */
    const char *backend_opt; /* --backend URL, or NULL */
    const char *app_opt;     /* --app DIR, or NULL */
    bool json;               /* --json */
    bool help;               /* --help / -h */
    bool version;            /* --version */

    /* The command's positional arguments and flags (borrowed from argv). */
    int argc;
    char **argv;
    cli_flag *flags;
    size_t nflags;

    /* Filled on demand by app.c. */
    char *app_dir;      /* absolute path of the app, or NULL: no app */
    json_t *config;     /* the app's stellar.json, or NULL */
    char *backend;      /* the resolved backend URL */
    stellar *h;         /* the open handle, or NULL */
    bool tasks_loaded;  /* the app's task modules are registered on h */
    int log_level;      /* for the stderr logger; default INFO */
    stellar_http *http; /* the HTTP server of run/dashboard, or NULL;
                           stopped by cli_cleanup() before h is closed */
    char *params_text;  /* PARAMS_JSON read from @FILE or stdin, or NULL */
};

/* ---------------------------------------------------------- commands.c --- */

extern const cli_cmd cli_commands[];
extern const size_t cli_ncommands;

/* Finds a command by name, ignoring case, '-' and '_'. NULL if unknown. */
const cli_cmd *cli_find(const char *name);
/* Same comparison, for command and flag names. */
bool cli_name_eq(const char *a, const char *b);
void cli_print_help(FILE *f);
void cli_print_cmd_help(FILE *f, const cli_cmd *cmd);

/* -------------------------------------------------------------- args.c --- */

/* Parses argv into c. Returns CLI_OK or CLI_USAGE (message printed). */
int cli_parse(cli *c, int argc, char **argv);
/* The value of a command flag given on the command line, or NULL. */
const char *cli_flag_get(const cli *c, const char *name);
bool cli_flag_has(const cli *c, const char *name);
/* Parses a whole decimal integer (no junk, no overflow). */
bool cli_parse_int(const char *s, int64_t *out);

/* Print "stellar CMD: message" on stderr and return the exit code. */
int cli_usage(const cli *c, const char *fmt, ...) STELLAR_PRINTF(2, 3);
int cli_fail(const cli *c, const char *fmt, ...) STELLAR_PRINTF(2, 3);
/* A bad value in the app's config: "DIR/stellar.json:LINE: KEY <fmt>",
 * KEY a dotted path ("tasks.queues"); exit code 1. */
int cli_config_fail(const cli *c, const char *key, const char *fmt, ...)
    STELLAR_PRINTF(3, 4);
int cli_notfound(const cli *c, const char *fmt, ...) STELLAR_PRINTF(2, 3);
/* Reports a library error: ENOTFOUND/ENOTASK exit 3, EINVAL 2, others 1. */
int cli_error(const cli *c, int rc, const stellar_error *e);

/* --------------------------------------------------------------- app.c --- */

/* Finds the app (--app, else the current directory if it has stellar.json)
 * and reads its config. required: no app is an error. Returns an exit code. */
int cli_app_find(cli *c, bool required);
/* Resolves the backend URL: --backend, STELLAR_BACKEND, the app config's
 * tasks.backend (relative sqlite paths from the app dir), the default. */
int cli_backend_resolve(cli *c);
/*
 * Opens c->h on the resolved backend with o (NULL: defaults), logging to
 * stderr. With load_tasks and an app present, first compiles the app's task
 * modules, then loads them onto the handle. Returns an exit code.
 */
int cli_open(cli *c, stellar_options *o, bool load_tasks);
void cli_cleanup(cli *c);
/* CLI_OK if queue is one of stellar_queues(), else "no queue named ..."
 * and CLI_NOTFOUND (or the backend's error). Needs c->h. */
int cli_queue_exists(cli *c, const char *queue);
/* Whether task names a task of the app (when its tasks are loaded) or the
 * class of one of jobs (an array of payloads, parsed or as text): the check
 * that tells a mistyped task from one that has no job to match. */
bool cli_task_known(const cli *c, const char *task, const json_t *jobs);
/* The app config's tasks section, or NULL. */
json_t *cli_tasks_config(const cli *c);
/* The stderr logger: "<UTC ISO time> <pid> <LEVEL> <text>". */
void cli_log(void *ud, int level, const char *msg);
void cli_logf(int level, const char *fmt, ...) STELLAR_PRINTF(2, 3);

/* ------------------------------------------------------------- build.c --- */

/* Compiles the app's changed modules/<m>/tasks/<t>.c into
 * .stellar/cache/<m>/<t>.so, then loads each on c->h. Prints the compiler's
 * or the validator's message with the file name. Returns an exit code. */
int cli_build_tasks(cli *c);
int cli_load_tasks(cli *c);

/* ------------------------------------------------------------ output.c --- */

/* Prints v as compact JSON and a newline on stdout. Returns an exit code. */
int out_json(const json_t *v);

/* A change's result: doc (taken; NULL: out of memory) as JSON with --json,
 * else the sentence fmt and a newline. Returns an exit code. */
int out_result(cli *c, json_t *doc, const char *fmt, ...) STELLAR_PRINTF(3, 4);

/* A text table. A header starting with '>' makes its column right-aligned.
 * Cells longer than the column limit (default 60 characters) are cut. */
typedef struct out_table out_table;
out_table *out_table_new(size_t ncols, ...);
/* Adds a row of ncols strings (copied; NULL prints as "-"). */
void out_table_row(out_table *t, ...);
void out_table_set_limit(out_table *t, size_t col, size_t max_chars);
void out_table_print(out_table *t, FILE *f);
void out_table_free(out_table *t);

/* "2026-11-29T02:20:19Z". */
void out_iso(int64_t ms, char out[32]);
/* "now", "5s ago", "in 3m", "2h ago", "4d ago". */
void out_rel(int64_t ms, int64_t now_ms, char out[32]);
/* "2026-11-29T02:20:19Z (5s ago)". */
void out_when(int64_t ms, int64_t now_ms, char out[64]);
/* Prints doc with --json, else hands it to print_table. Takes ownership of
 * doc (NULL: out of memory). Returns an exit code. */
int out_show(cli *c, json_t *doc, int (*print_table)(cli *, json_t *));
/* Prints the table on stdout and frees it (NULL: out of memory). */
int out_print(out_table *t);
/* A JSON scalar as text for a cell (numbers in buf); NULL otherwise. */
const char *out_scalar(const json_t *v, char buf[64]);
/* A Resque payload (parsed object, or its text) split into cells: task,
 * queue and the params as compact JSON (new string; free with st_free). */
char *out_payload(const json_t *payload, const char **task, const char **queue);
/* Reads a time as the Resque formats write it: a JS date string, ISO-8601,
 * "YYYY/MM/DD HH:MM:SS", or a number (seconds if small, else ms). */
bool out_parse_time(const json_t *v, int64_t *ms);

/* ------------------------------------------------------------ commands --- */

int cmd_new(cli *c);
int cmd_make_task(cli *c);
int cmd_run(cli *c);
int cmd_tasks(cli *c);
int cmd_enqueue(cli *c);
int cmd_enqueue_at(cli *c);
int cmd_enqueue_in(cli *c);
int cmd_stats(cli *c);
int cmd_failed(cli *c);
int cmd_queues(cli *c);
int cmd_length(cli *c);
int cmd_workers(cli *c);
int cmd_timestamps(cli *c);
int cmd_dashboard(cli *c);

/* cmd_schedules.c */
int cmd_schedules(cli *c);
/* cmd_control.c */
int cmd_pause(cli *c);
int cmd_resume(cli *c);
int cmd_limit(cli *c);
int cmd_limits(cli *c);
/* Applies the app config's "limits" (stellar run, at start); needs c->h.
 * Returns an exit code (a bad entry names its key). */
int cli_apply_limits(cli *c);

/* cmd_inspect.c */
int cmd_details(cli *c);
int cmd_queued(cli *c);
int cmd_working_on(cli *c);
int cmd_all_working_on(cli *c);
int cmd_locks(cli *c);
int cmd_failed_count(cli *c);

/* cmd_delayed.c */
int cmd_delayed_at(cli *c);
int cmd_all_delayed(cli *c);
int cmd_scheduled_at(cli *c);
int cmd_del_delayed(cli *c);
int cmd_del_delayed_at(cli *c);
int cmd_del_all_delayed(cli *c);

/* cmd_cron.c */
int cmd_cron(cli *c);

/* cmd_manage.c */
int cmd_del(cli *c);
int cmd_del_queue(cli *c);
int cmd_enqueue_recurrent(cli *c);
int cmd_stop_recurrent(cli *c);
int cmd_del_lock(cli *c);
int cmd_remove_failed(cli *c);
int cmd_retry_failed(cli *c);
int cmd_clean_old_workers(cli *c);

/* --------------------------------------------------------- cmd_http.c --- */

/* The HTTP server `run` starts after stellar_start(): --http, --no-http,
 * --http-token and the app config's "http" section. Starts nothing when
 * HTTP is off. Returns an exit code (1 with the library's message). */
int cli_http_start(cli *c, bool dashboard);
/* Only checks the flags and the config section, for an early error. */
int cli_http_check(cli *c, bool dashboard);
/* Stops the server, if one runs. */
void cli_http_stop(cli *c);

/* ------------------------------------------------------------- args.c --- */

/* Checks a PARAMS_JSON argument: a JSON object. "@FILE" reads it from
 * FILE, "-" (or "@-") from standard input, as curl does; *params then
 * points at the text read (owned by c). Returns an exit code. */
int cli_check_params(cli *c, const char **params);

#endif /* STELLAR_CLI_H */
