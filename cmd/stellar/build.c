/*
 * build.c: compiling an app's task files into shared objects, and loading
 * them.
 *
 * Every modules/<module>/tasks/<task>.c becomes .stellar/cache/<module>/
 * <task>.so, one object per file, rebuilt when the object is missing or
 * older than its source or than stellar.h. The compiler is $CC (default cc)
 * with -shared -fPIC -std=c11 -Wall -O2, stellar.h's folder and jansson's
 * cflags; it runs in the app folder on the relative path, so its messages
 * name the file as the user knows it. It writes to a temporary name that is
 * renamed into place, so a failed build leaves no object behind and two
 * processes building at once never load a half-written one.
 *
 * Command tasks, modules/<module>/tasks/<task>.json, need no build: they
 * are loaded with stellar_command_task_load() (src/command.c). An app
 * without a .c task never looks for the compiler or stellar.h, so it runs
 * where no C toolchain is installed.
 *
 * Nothing here starts threads: fork() is safe because commands build before
 * they start anything.
 */
#include "cli.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef STELLAR_INSTALL_INCLUDEDIR
#define STELLAR_INSTALL_INCLUDEDIR "/usr/local/include"
#endif

/* One task file: paths relative to the app folder. */
typedef struct task_file {
    char *src; /* modules/<m>/tasks/<t>.c */
    char *so;  /* .stellar/cache/<m>/<t>.so */
} task_file;

typedef struct file_list {
    task_file *v;
    size_t n;
} file_list;

static void files_free(file_list *l)
{
    size_t i;
    for (i = 0; i < l->n; i++) {
        st_free(l->v[i].src);
        st_free(l->v[i].so);
    }
    st_free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int no_dot(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Lists modules/<m>/tasks/<t><ext> in name order: ".c" (C tasks, with
 * their objects) or ".json" (command tasks, no object). */
static int scan(cli *c, file_list *out, const char *ext)
{
    bool is_c = strcmp(ext, ".c") == 0;
    struct dirent **mods = NULL;
    char *modules = st_asprintf("%s/modules", c->app_dir);
    int nm, i, rc = CLI_OK;

    if (!modules) return cli_fail(c, "out of memory");
    if (!is_dir(modules)) {
        st_free(modules);
        return CLI_OK;
    }
    nm = scandir(modules, &mods, no_dot, alphasort);
    if (nm < 0) {
        rc = cli_fail(c, "%s: %s", modules, strerror(errno));
        st_free(modules);
        return rc;
    }
    for (i = 0; i < nm; i++) {
        struct dirent **files = NULL;
        char *tasks = st_asprintf("%s/%s/tasks", modules, mods[i]->d_name);
        int nf = -1, j;

        if (tasks && is_dir(tasks))
            nf = scandir(tasks, &files, no_dot, alphasort);
        for (j = 0; j < nf; j++) {
            const char *f = files[j]->d_name;
            if (rc == CLI_OK && ends_with(f, ext)) {
                task_file *v = st_realloc(out->v, (out->n + 1) * sizeof *v);
                if (!v) {
                    rc = cli_fail(c, "out of memory");
                } else {
                    out->v = v;
                    v[out->n].src =
                        st_asprintf("modules/%s/tasks/%s", mods[i]->d_name, f);
                    v[out->n].so =
                        is_c ? st_asprintf(".stellar/cache/%s/%.*s.so",
                                           mods[i]->d_name,
                                           (int)(strlen(f) - 2), f)
                             : NULL;
                    out->n++;
                    if (!v[out->n - 1].src || (is_c && !v[out->n - 1].so))
                        rc = cli_fail(c, "out of memory");
                }
            }
            free(files[j]);
        }
        free(files);
        st_free(tasks);
        free(mods[i]);
    }
    free(mods);
    st_free(modules);
    return rc;
}

/* ------------------------------------------------------------ Compile --- */

static const char *include_dir(void)
{
    const char *env = getenv("STELLAR_INCLUDE_DIR");
    if (env && *env) return env;
#ifdef STELLAR_SOURCE_INCLUDEDIR
    {
        struct stat st;
        if (stat(STELLAR_SOURCE_INCLUDEDIR "/stellar.h", &st) == 0)
            return STELLAR_SOURCE_INCLUDEDIR;
    }
#endif
    return STELLAR_INSTALL_INCLUDEDIR;
}

/* A growable argv. */
typedef struct argv_buf {
    char **v;
    size_t n;
    bool oom;
} argv_buf;

static void argv_add(argv_buf *a, const char *s)
{
    char **v = a->oom ? NULL : st_realloc(a->v, (a->n + 2) * sizeof *v);
    char *d = v ? st_strdup(s) : NULL;
    if (!d) {
        a->oom = true;
        if (v) a->v = v;
        return;
    }
    a->v = v;
    a->v[a->n++] = d;
    a->v[a->n] = NULL;
}

/* Adds the whitespace-separated words of s. */
static void argv_split(argv_buf *a, const char *s)
{
    while (s && *s) {
        size_t n;
        char *w;
        s += strspn(s, " \t\r\n");
        n = strcspn(s, " \t\r\n");
        if (!n) break;
        w = st_strndup(s, n);
        if (!w) {
            a->oom = true;
            return;
        }
        argv_add(a, w);
        st_free(w);
        s += n;
    }
}

static void argv_free(argv_buf *a)
{
    size_t i;
    for (i = 0; i < a->n; i++)
        st_free(a->v[i]);
    st_free(a->v);
}

/* `pkg-config --cflags jansson`, or "" when pkg-config is missing. */
static char *jansson_cflags(void)
{
    st_buf b = {0};
    char chunk[256];
    size_t n;
    FILE *p = popen("pkg-config --cflags jansson 2>/dev/null", "r");
    if (!p) return st_strdup("");
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        st_buf_put(&b, chunk, n);
    if (pclose(p) != 0) {
        st_buf_free(&b);
        return st_strdup("");
    }
    return b.len ? st_buf_take(&b) : st_strdup("");
}

/* Runs argv in dir; its output (stdout and stderr) goes to *out. Returns
 * true when it exits 0. */
static bool run_compiler(const char *dir, char *const *argv, st_buf *out)
{
    int fds[2], status;
    pid_t pid;
    char chunk[4096];
    ssize_t n;

    if (pipe(fds) != 0) {
        st_buf_printf(out, "pipe: %s\n", strerror(errno));
        return false;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        st_buf_printf(out, "fork: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        if (chdir(dir) != 0) _exit(126);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        n = read(fds[0], chunk, sizeof chunk);
        if (n > 0)
            st_buf_put(out, chunk, (size_t)n);
        else if (n == 0 || errno != EINTR)
            break;
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool newer(const struct stat *a, const struct stat *b)
{
    if (a->st_mtim.tv_sec != b->st_mtim.tv_sec)
        return a->st_mtim.tv_sec > b->st_mtim.tv_sec;
    return a->st_mtim.tv_nsec > b->st_mtim.tv_nsec;
}

static int mkdirs(char *path)
{
    char *p;
    for (p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            *p = '/';
            return -1;
        }
        *p = '/';
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Builds one file if its object is stale. Returns an exit code. */
static int build_one(cli *c, const task_file *f, const char *inc,
                     const char *cflags, const struct stat *header)
{
    char *src = st_asprintf("%s/%s", c->app_dir, f->src);
    char *so = st_asprintf("%s/%s", c->app_dir, f->so);
    char *tmp = st_asprintf("%s.%ld.tmp", so ? so : "", (long)getpid());
    char *dir = so ? st_strdup(so) : NULL;
    char *incflag = st_asprintf("-I%s", inc);
    const char *cc = getenv("CC");
    struct stat s_src, s_so;
    argv_buf a = {0};
    st_buf out = {0};
    int rc = CLI_OK;

    if (!src || !so || !tmp || !dir || !incflag) {
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    if (stat(src, &s_src) != 0) {
        rc = cli_fail(c, "%s: %s", f->src, strerror(errno));
        goto done;
    }
    if (stat(so, &s_so) == 0 && !newer(&s_src, &s_so) &&
        !(header && newer(header, &s_so)))
        goto done; /* up to date */
    *strrchr(dir, '/') = '\0';
    if (mkdirs(dir) != 0) {
        rc = cli_fail(c, "cannot create %s: %s", dir, strerror(errno));
        goto done;
    }
    argv_split(&a, cc && *cc ? cc : "cc");
    argv_add(&a, "-shared");
    argv_add(&a, "-fPIC");
    argv_add(&a, "-std=c11");
    argv_add(&a, "-Wall");
    argv_add(&a, "-O2");
    argv_add(&a, incflag);
    argv_split(&a, cflags);
    argv_add(&a, "-o");
    argv_add(&a, tmp);
    argv_add(&a, f->src);
    if (a.oom) {
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    if (c->log_level <= STELLAR_LOG_INFO)
        cli_logf(STELLAR_LOG_INFO, "compiling %s", f->src);
    if (!run_compiler(c->app_dir, a.v, &out)) {
        unlink(tmp);
        while (out.len && (out.p[out.len - 1] == '\n'))
            out.p[--out.len] = '\0';
        rc = cli_fail(c, "%s does not compile:\n%s", f->src,
                      out.len ? out.p : "(no compiler output)");
        goto done;
    }
    if (out.len) fprintf(stderr, "%s", out.p); /* warnings */
    if (rename(tmp, so) != 0) {
        rc = cli_fail(c, "cannot write %s: %s", f->so, strerror(errno));
        unlink(tmp);
    }
done:
    st_buf_free(&out);
    argv_free(&a);
    st_free(src);
    st_free(so);
    st_free(tmp);
    st_free(dir);
    st_free(incflag);
    return rc;
}

int cli_build_tasks(cli *c)
{
    file_list files = {0};
    const char *inc = include_dir();
    char *header = NULL, *cflags = NULL;
    struct stat hs;
    size_t i;
    int rc, failed = 0;

    if ((rc = scan(c, &files, ".c")) != CLI_OK) goto done;
    /* An app of command tasks only needs no compiler and no header. */
    if (files.n == 0) goto done;
    if (!(header = st_asprintf("%s/stellar.h", inc))) {
        rc = cli_fail(c, "out of memory");
        goto done;
    }
    if (stat(header, &hs) != 0) {
        rc = cli_fail(c,
                      "cannot find stellar.h in %s (set "
                      "STELLAR_INCLUDE_DIR to the folder that has it)",
                      inc);
        goto done;
    }
    for (i = 0; i < files.n; i++) {
        if (!cflags && !(cflags = jansson_cflags())) {
            rc = cli_fail(c, "out of memory");
            goto done;
        }
        if (build_one(c, &files.v[i], inc, cflags, &hs) != CLI_OK) failed++;
    }
    if (failed) rc = CLI_FAIL;
done:
    st_free(header);
    st_free(cflags);
    files_free(&files);
    return rc;
}

int cli_load_tasks(cli *c)
{
    file_list files = {0};
    size_t i;
    int rc, failed = 0;

    if (c->tasks_loaded) return CLI_OK;
    if ((rc = scan(c, &files, ".c")) != CLI_OK) return rc;
    for (i = 0; i < files.n; i++) {
        stellar_error e = {0};
        char *so = st_asprintf("%s/%s", c->app_dir, files.v[i].so);
        if (!so) {
            rc = cli_fail(c, "out of memory");
            break;
        }
        rc = stellar_module_load(c->h, so, &e);
        if (rc != STELLAR_OK) {
            /* Name the source, not the object the library names. */
            const char *msg = e.msg[0] ? e.msg : stellar_strerror(rc);
            size_t n = strlen(so);
            if (strncmp(msg, so, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
                msg += n + 2;
            cli_fail(c, "%s: %s", files.v[i].src, msg);
            failed++;
        }
        rc = CLI_OK;
        st_free(so);
    }
    files_free(&files);
    /* Command tasks: modules/<m>/tasks/<t>.json (docs/tasks.md). */
    if (rc == CLI_OK && (rc = scan(c, &files, ".json")) != CLI_OK) return rc;
    for (i = 0; i < files.n; i++) {
        stellar_error e = {0};
        char *json = st_asprintf("%s/%s", c->app_dir, files.v[i].src);
        const char *msg;
        size_t n;
        if (!json) {
            rc = cli_fail(c, "out of memory");
            break;
        }
        if (stellar_command_task_load(c->h, json, c->app_dir, &e) !=
            STELLAR_OK) {
            /* Name the file as the user knows it, from the app folder. */
            msg = e.msg[0] ? e.msg : "cannot load";
            n = strlen(json);
            if (strncmp(msg, json, n) == 0) msg += n;
            cli_fail(c, "%s%s%s", files.v[i].src, *msg == ':' ? "" : ": ", msg);
            failed++;
        }
        st_free(json);
    }
    files_free(&files);
    if (rc == CLI_OK && failed) rc = CLI_FAIL;
    c->tasks_loaded = rc == CLI_OK;
    return rc;
}
