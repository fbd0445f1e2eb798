/*
 * cmd_scaffold.c: `stellar new DIR` and `stellar makeTask NAME --module=M`,
 * which write an app and a task skeleton that work as written.
 */
#include "cli.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p. */
static int make_dirs(const char *path)
{
    char *p, *d = st_strdup(path);
    int rc = 0;

    if (!d) return -1;
    for (p = d + 1; *p && rc == 0; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(d, 0755) != 0 && errno != EEXIST) rc = -1;
        *p = '/';
    }
    if (rc == 0 && mkdir(d, 0755) != 0 && errno != EEXIST) rc = -1;
    st_free(d);
    return rc;
}

/* Writes text to a new file; fails if it exists (O_EXCL), so two commands
 * never overwrite each other's work. */
static int write_new(const cli *c, const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    size_t n = strlen(text), off = 0;

    if (fd < 0) {
        if (errno == EEXIST)
            return cli_fail(c, "%s already exists; not overwriting it", path);
        return cli_fail(c, "cannot create %s: %s", path, strerror(errno));
    }
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int err = errno;
            close(fd);
            unlink(path);
            return cli_fail(c, "cannot write %s: %s", path, strerror(err));
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) return cli_fail(c, "cannot write %s", path);
    return CLI_OK;
}

/* ---------------------------------------------------------------- new --- */

int cmd_new(cli *c)
{
    const char *dir = c->argv[0];
    json_t *cfg, *tasks;
    char *cfg_path = st_asprintf("%s/stellar.json", dir);
    char *modules = st_asprintf("%s/modules", dir);
    char *ignore = st_asprintf("%s/.gitignore", dir);
    char *text = NULL;
    struct stat st;
    int rc = CLI_OK;

    if (!cfg_path || !modules || !ignore) {
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    if (stat(cfg_path, &st) == 0) {
        rc = cli_fail(c, "%s already exists; not overwriting it", cfg_path);
        goto done;
    }
    if (make_dirs(modules) != 0) {
        rc = cli_fail(c, "cannot create %s: %s", modules, strerror(errno));
        goto done;
    }
    tasks = json_pack("{s:s, s:[s], s:i, s:b, s:i}", "backend",
                      c->backend_opt ? c->backend_opt : "sqlite:./stellar.db",
                      "queues", "*", "maxTaskProcessors", 2, "scheduler", 1,
                      "timeout", 100);
    /* The dashboard and API, on loopback only (no token needed there). */
    cfg = tasks ? json_pack("{s:o, s:{s:s}}", "tasks", tasks, "http", "listen",
                            "127.0.0.1:8080")
                : NULL;
    text = cfg ? json_dumps(cfg, JSON_INDENT(2)) : NULL;
    json_decref(cfg);
    if (!text) {
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    {
        char *with_nl = st_asprintf("%s\n", text);
        rc = with_nl ? write_new(c, cfg_path, with_nl)
                     : cli_fail(c, "out of memory");
        st_free(with_nl);
    }
    if (rc != CLI_OK) goto done;
    if (stat(ignore, &st) != 0)
        write_new(c, ignore,
                  "# Stellar's build cache and the SQLite store.\n"
                  ".stellar/\n*.db\n*.db-*\n");
    printf("created %s\n"
           "next:\n"
           "  cd %s\n"
           "  stellar makeTask sayHello --module=example\n"
           "  stellar run    (the dashboard: http://127.0.0.1:8080/)\n",
           cfg_path, dir);
done:
    free(text);
    st_free(cfg_path);
    st_free(modules);
    st_free(ignore);
    return rc;
}

/* ----------------------------------------------------------- makeTask --- */

/* Task names: a letter or '_' first, then letters, digits, '_', '.', '-'
 * or ':' (the seed recommends namespaces such as auth.sessionValidation). */
static bool valid_task_name(const char *s)
{
    if (!isalpha((unsigned char)*s) && *s != '_') return false;
    for (s++; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-:", *s)) return false;
    return true;
}

static bool valid_module_name(const char *s)
{
    if (!isalnum((unsigned char)*s) && *s != '_') return false;
    for (s++; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-", *s)) return false;
    return true;
}

/* The task name as a C identifier: other characters become '_'. */
static char *c_ident(const char *name)
{
    char *id = st_strdup(name), *p;
    if (!id) return NULL;
    for (p = id; *p; p++)
        if (!isalnum((unsigned char)*p)) *p = '_';
    return id;
}

/* s as the inside of a C string literal. */
static char *c_string(const char *s)
{
    st_buf b = {0};
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            st_buf_putc(&b, '\\');
            st_buf_putc(&b, (char)ch);
        } else if (ch == '\n') {
            st_buf_puts(&b, "\\n");
        } else if (ch < 0x20) {
            st_buf_printf(&b, "\\%03o", ch);
        } else {
            st_buf_putc(&b, (char)ch);
        }
    }
    return b.len ? st_buf_take(&b) : st_strdup("");
}

/* A macro, so that the compiler checks it as a printf format. */
#define SKELETON                                                               \
    "/*\n"                                                                     \
    " * %s: a Stellar task.\n"                                                 \
    " *\n"                                                                     \
    " * `stellar run` compiles this file into .stellar/cache/ and loads it.\n" \
    " * run() gets the job's params (a JSON object, borrowed) and ends the\n"  \
    " * job by returning: STELLAR_OK for success, or\n"                        \
    " * stellar_fail(next, \"why\") for a failure that is recorded with the\n" \
    " * failed jobs. To finish later from another thread, return\n"            \
    " * STELLAR_PENDING and call stellar_next_done(next, error) once.\n"       \
    " */\n"                                                                    \
    "#include <stellar.h>\n"                                                   \
    "\n"                                                                       \
    "static int run(stellar_api *api, const json_t *params, stellar_next "     \
    "*next)\n"                                                                 \
    "{\n"                                                                      \
    "    (void)params;\n"                                                      \
    "    (void)next;\n"                                                        \
    "    stellar_log(api, STELLAR_LOG_INFO, \"%s ran\");\n"                    \
    "    return STELLAR_OK;\n"                                                 \
    "}\n"                                                                      \
    "\n"                                                                       \
    "STELLAR_TASK(%s) = {\n"                                                   \
    "    .name = \"%s\",\n"                                                    \
    "    .description = \"%s\",\n"                                             \
    "    .queue = \"%s\",\n"                                                   \
    "    .frequency = %lld, /* ms; > 0 makes the task periodic */\n"           \
    "    .plugins = NULL,        /* e.g. (const char *const[]){\"jobLock\", "  \
    "NULL} */\n"                                                               \
    "    .plugin_options = NULL, /* JSON text keyed by plugin name */\n"       \
    "    .run = run,\n"                                                        \
    "};\n"

/* --lang: command tasks (docs/tasks.md). Each script reads the params
 * from stdin, fails on purpose when they hold "fail": true, else succeeds;
 * %s is the task's name, in a comment. */
#define PROTOCOL_DOC(c)                                                        \
    c " `stellar run` starts this script for each job, in this folder, "       \
      "with the\n" c " job's params (a JSON object) on standard input. Exit "  \
      "status 0 is\n" c " success; any other fails the job, with the last "    \
      "line written to\n" c " standard error as its error. Output goes to "    \
      "stellar run's log.\n" c " Environment: STELLAR_TASK, STELLAR_QUEUE, "   \
      "STELLAR_WORKER,\n" c " STELLAR_BACKEND (to enqueue follow-ups with "    \
      "`stellar enqueue`),\n" c " STELLAR_APP. Try: stellar enqueue %s "       \
      "'{\"fail\":true}'\n"

/* A macro, so that the compiler checks it as a printf format. */
#define PYTHON_SKELETON                                                        \
    "#!/usr/bin/env python3\n"                                                 \
    "# %s: a Stellar command task, declared by the .json beside it.\n"         \
    "#\n" PROTOCOL_DOC(                                                        \
        "#") "import json\n"                                                   \
             "import os\n"                                                     \
             "import sys\n"                                                    \
             "\n"                                                              \
             "\n"                                                              \
             "def main():\n"                                                   \
             "    params = json.load(sys.stdin)\n"                             \
             "    if params.get(\"fail\"):\n"                                  \
             "        print(\"failing on purpose: params.fail is set\", "      \
             "file=sys.stderr)\n"                                              \
             "        return 1\n"                                              \
             "    print(os.environ[\"STELLAR_TASK\"], \"ran with\", "          \
             "json.dumps(params))\n"                                           \
             "    return 0\n"                                                  \
             "\n"                                                              \
             "\n"                                                              \
             "if __name__ == \"__main__\":\n"                                  \
             "    sys.exit(main())\n"

/* A macro, so that the compiler checks it as a printf format. */
#define NODE_SKELETON                                                          \
    "#!/usr/bin/env node\n"                                                    \
    "// %s: a Stellar command task, declared by the .json beside it.\n"        \
    "//\n" PROTOCOL_DOC(                                                       \
        "//") "let input = '';\n"                                              \
              "process.stdin.setEncoding('utf8');\n"                           \
              "process.stdin.on('data', (chunk) => { input += chunk; });\n"    \
              "process.stdin.on('end', () => {\n"                              \
              "  const params = JSON.parse(input || '{}');\n"                  \
              "  if (params.fail) {\n"                                         \
              "    console.error('failing on purpose: params.fail is set');\n" \
              "    process.exit(1);\n"                                         \
              "  }\n"                                                          \
              "  console.log(process.env.STELLAR_TASK, 'ran with', "           \
              "JSON.stringify(params));\n"                                     \
              "});\n"

/* A macro, so that the compiler checks it as a printf format. */
#define SH_SKELETON                                                            \
    "#!/bin/sh\n"                                                              \
    "# %s: a Stellar command task, declared by the .json beside it.\n"         \
    "#\n" PROTOCOL_DOC(                                                        \
        "#") "params=$(cat)\n"                                                 \
             "case $params in\n"                                               \
             "*'\"fail\":true'*)\n"                                            \
             "    echo \"failing on purpose: params.fail is set\" >&2\n"       \
             "    exit 1\n"                                                    \
             "    ;;\n"                                                        \
             "esac\n"                                                          \
             "echo \"$STELLAR_TASK ran with $params\"\n"

/* Writes modules/M/tasks/NAME.json and its executable script. */
static int make_command_task(cli *c, const char *dir, const char *name,
                             const char *lang, const char *desc,
                             const char *queue, int64_t freq)
{
    const char *ext = strcmp(lang, "python") == 0 ? ".py"
                      : strcmp(lang, "node") == 0 ? ".js"
                                                  : ".sh";
    char *script = st_asprintf("%s/%s%s", dir, name, ext);
    char *json = st_asprintf("%s/%s.json", dir, name);
    char *argv0 = st_asprintf("./%s%s", name, ext);
    char *text = NULL, *spec = NULL;
    json_t *doc = NULL;
    int rc = CLI_OK;

    if (script && json && argv0)
        doc = json_pack("{s:s, s:s, s:s, s:[s], s:i, s:I, s:[]}", "name", name,
                        "description", desc, "queue", queue, "command", argv0,
                        "timeout", 60000, "frequency", (json_int_t)freq,
                        "plugins");
    if (doc) spec = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (spec && strcmp(lang, "python") == 0)
        text = st_asprintf(PYTHON_SKELETON, name, name);
    else if (spec && strcmp(lang, "node") == 0)
        text = st_asprintf(NODE_SKELETON, name, name);
    else if (spec)
        text = st_asprintf(SH_SKELETON, name, name);
    if (!text) {
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    st_free(argv0);
    if (!(argv0 = st_asprintf("%s\n", spec))) { /* the file's text */
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    if ((rc = write_new(c, json, argv0)) != CLI_OK) goto done;
    if ((rc = write_new(c, script, text)) != CLI_OK) {
        unlink(json); /* both or neither */
        goto done;
    }
    if (chmod(script, 0755) != 0) {
        rc = cli_fail(c, "cannot make %s executable: %s", script,
                      strerror(errno));
        goto done;
    }
    printf("created %s\ncreated %s\n", json, script);
done:
    free(spec);
    json_decref(doc);
    st_free(text);
    st_free(script);
    st_free(json);
    st_free(argv0);
    return rc;
}

int cmd_make_task(cli *c)
{
    const char *name = c->argv[0];
    const char *module = cli_flag_get(c, "module");
    const char *desc = cli_flag_get(c, "description");
    const char *queue = cli_flag_get(c, "queue");
    const char *freq_s = cli_flag_get(c, "frequency");
    const char *lang = cli_flag_get(c, "lang");
    char *dir = NULL, *path = NULL, *text = NULL, *id = NULL;
    char *desc_c = NULL, *queue_c = NULL;
    int64_t freq = 0;
    int rc;

    if (!module || !*module) return cli_usage(c, "missing --module=MODULE");
    if (!valid_task_name(name))
        return cli_usage(c,
                         "invalid task name '%s' (use letters, digits, "
                         "'_', '.', '-', ':'; a letter first)",
                         name);
    if (!valid_module_name(module))
        return cli_usage(c,
                         "invalid module name '%s' (use letters, digits, "
                         "'_', '.', '-')",
                         module);
    if (freq_s && (!cli_parse_int(freq_s, &freq) || freq < 0))
        return cli_usage(c, "--frequency must be an integer >= 0 (ms)");
    if (queue && !*queue) return cli_usage(c, "--queue is empty");
    if (lang && strcmp(lang, "c") != 0 && strcmp(lang, "python") != 0 &&
        strcmp(lang, "node") != 0 && strcmp(lang, "sh") != 0)
        return cli_usage(c, "--lang must be c, python, node or sh");
    if ((rc = cli_app_find(c, true)) != CLI_OK) return rc;

    dir = st_asprintf("%s/modules/%s/tasks", c->app_dir, module);
    path = dir ? st_asprintf("%s/%s.c", dir, name) : NULL;
    id = c_ident(name);
    desc_c = c_string(desc && *desc ? desc : "TODO: say what this task does");
    queue_c = c_string(queue ? queue : "default");
    if (!dir || !path || !id || !desc_c || !queue_c) {
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    if (make_dirs(dir) != 0) {
        rc = cli_fail(c, "cannot create %s: %s", dir, strerror(errno));
        goto done;
    }
    if (lang && strcmp(lang, "c") != 0) {
        rc = make_command_task(c, dir, name, lang,
                               desc && *desc ? desc
                                             : "TODO: say what this task does",
                               queue ? queue : "default", freq);
        goto done;
    }
    text = st_asprintf(SKELETON, name, name, id, name, desc_c, queue_c,
                       (long long)freq);
    if (!text) {
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    if ((rc = write_new(c, path, text)) == CLI_OK) printf("created %s\n", path);
done:
    st_free(dir);
    st_free(path);
    st_free(text);
    st_free(id);
    st_free(desc_c);
    st_free(queue_c);
    return rc;
}
