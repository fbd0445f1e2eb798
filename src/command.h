/*
 * command.h: command tasks, a task whose run is an executable in any
 * language: what a task file holds (loaded by taskfile.c), its run
 * (command.c), and the few calls that tie them to the task registry
 * (task.c) and to the running processor (taskapi.c). Not exported.
 */
#ifndef ST_COMMAND_H
#define ST_COMMAND_H

#include "core.h"

/* What a command task runs, as its file said (taskfile.c fills it, at
 * load; command.c reads it, never changing it); owned by its st_task. */
typedef struct st_command {
    char **argv;     /* NULL-terminated */
    char *exec_path; /* absolute if argv[0] has a '/'; else NULL: PATH */
    char *dir;       /* the task file's folder (absolute): the cwd */
    char *app_dir;   /* STELLAR_APP */
    char **env;      /* "K=V" from the file's "env", NULL-terminated */
    int64_t timeout; /* ms; 0: none */
} st_command;

void st_command_free(st_command *c);
/* The command's argv as a JSON array of strings (new), NULL if out of
 * memory. */
json_t *st_command_argv_json(const st_command *c);
/* The command's timeout in ms (0: none). */
int64_t st_command_timeout(const st_command *c);
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
