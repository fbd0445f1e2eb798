/*
 * command.h: command tasks, a task whose run is an executable in any
 * language: what a task file holds (loaded by taskfile.c), its run
 * (command.c), and the few calls that tie them to the task registry
 * (task.c) and to the running processor (taskapi.c). Not exported.
 */
#ifndef ST_COMMAND_H
#define ST_COMMAND_H

#include "core.h"

/* A command's resource limits, the keys of its file's "limits" object
 * (st_limit_keys, taskfile.c): memoryMiB (RLIMIT_AS, MiB), cpuSeconds
 * (RLIMIT_CPU, s: SIGXCPU, then SIGKILL 1 s later), openFiles
 * (RLIMIT_NOFILE). */
enum { ST_LIMIT_MEMORY, ST_LIMIT_CPU, ST_LIMIT_FILES, ST_NLIMITS };
extern const char *const st_limit_keys[ST_NLIMITS];

/* What a command task runs, as its file said (taskfile.c fills it, at
 * load; command.c reads it, never changing it); owned by its st_task. */
typedef struct st_command {
    char **argv;     /* NULL-terminated */
    char *exec_path; /* absolute if argv[0] has a '/'; else NULL: PATH */
    char *dir;       /* the task file's folder (absolute): the cwd */
    char *app_dir;   /* STELLAR_APP */
    char **env;      /* "K=V" from the file's "env", NULL-terminated */
    int64_t timeout; /* ms; 0: none */
    /* "limits": set with setrlimit before the exec; 0: not set. */
    int64_t limits[ST_NLIMITS];
} st_command;

void st_command_free(st_command *c);
/* The command's argv as a JSON array of strings (new), NULL if out of
 * memory. */
json_t *st_command_argv_json(const st_command *c);
/* Whether the command has a limit; its limits as the file's "limits"
 * object (new), NULL if it has none or out of memory. */
bool st_command_has_limits(const st_command *c);
json_t *st_command_limits_json(const st_command *c);
/* The command's timeout in ms (0: none). */
int64_t st_command_timeout(const st_command *c);
/* The executable file prog (no '/') names in a folder of $PATH, as a new
 * string (st_free), or NULL: none, or out of memory. */
char *st_command_which(const char *prog);
/* command.c: a command task's run (its stellar_task.run). */
int st_command_run(stellar_api *api, const json_t *params, stellar_next *next);

/* task.c: registers t as stellar_task_register() does and attaches cmd to
 * it, which the task then owns (on success only). */
int st_task_register_command(stellar *h, const stellar_task *t, st_command *cmd,
                             stellar_error *e);

/* taskapi.c: the task being run, and whether a stop has put its job back at
 * the head of its queue (then the run's outcome is not recorded, and a
 * command should be ended). */
const st_task *st_api_task_def(stellar_api *api);
bool st_api_abandoned(stellar_api *api);

#endif /* ST_COMMAND_H */
