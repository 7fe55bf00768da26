/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec.c: process spawning and `exec` agents (see exec.h for the design).
 *
 * DESIGN (the child between fork and exec)
 *   The daemon is multithreaded, so between fork() and execve() the child
 *   calls async-signal-safe functions only: everything it needs (argv,
 *   envp, the resolved path, the rlimits) is prepared by the parent
 *   beforehand, and a failure is reported as two ints on the error pipe.
 */
#include "exec.h"
#include "log.h"
#include "list.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define READ_CHUNK 65536

struct sq_spawn_spec_s {
        char *name;     /* the agent's name */
        char **argv;    /* NULL-terminated */
        char *path;     /* argv[0] resolved through PATH, or NULL */
        char **envp;    /* NULL-terminated: allow-list + agent variables */
        char *path_env; /* PATH to resolve argv[0] with, or NULL */
        char *workdir;  /* or NULL */
        struct rlimit rl_as, rl_cpu, rl_nofile;
        bool has_as, has_cpu, has_nofile;
};

/* Steps the child reports on the error pipe. */
enum {
        STEP_SETPGID = 1,
        STEP_DUP2,
        STEP_CHDIR,
        STEP_RLIMIT_AS,
        STEP_RLIMIT_CPU,
        STEP_RLIMIT_NOFILE,
        STEP_EXEC,
};

static char **strv_dup(char *const *strv) {
        size_t cnt = 0, i;
        char **copy;
        while (strv && strv[cnt])
                cnt++;
        copy = sq_calloc(cnt + 1, sizeof(*copy));
        for (i = 0; i < cnt; i++)
                copy[i] = sq_strdup(strv[i]);
        return copy;
}

static void strv_free(char **strv) {
        size_t i;
        for (i = 0; strv && strv[i]; i++)
                sq_free(strv[i]);
        sq_free(strv);
}

static const char *env_lookup(char *const *envp, const char *name) {
        size_t len = strlen(name);
        for (; envp && *envp; envp++) {
                if (!strncmp(*envp, name, len) && (*envp)[len] == '=')
                        return *envp + len + 1;
        }
        return NULL;
}

/* Finds an executable @p file in the colon-separated @p path. */
static char *path_search(const char *file, const char *path) {
        const char *p = path, *colon;
        char buf[4096];

        while (p && *p) {
                size_t len;
                colon = strchr(p, ':');
                len   = colon ? (size_t)(colon - p) : strlen(p);
                snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? p : ".",
                         file);
                if (access(buf, X_OK) == 0)
                        return sq_strdup(buf);
                if (!colon)
                        break;
                p = colon + 1;
        }
        return NULL;
}

sq_spawn_spec_t *sq_spawn_spec_new(const sq_agent_conf_t *aconf,
                                   char *const *envp) {
        sq_spawn_spec_t *spec = sq_calloc(1, sizeof(*spec));
        size_t i, len, n = 0;
        const char *val;

        spec->name    = sq_strdup(aconf->name);
        spec->argv    = strv_dup(aconf->command);
        spec->workdir = aconf->workdir ? sq_strdup(aconf->workdir) : NULL;
        spec->envp    = sq_calloc(aconf->env_allow_cnt + aconf->env_cnt + 1,
                                  sizeof(*spec->envp));
        for (i = 0; i < aconf->env_allow_cnt; i++) {
                bool overridden = false;
                size_t j;
                for (j = 0; j < aconf->env_cnt; j++)
                        overridden |=
                            !strcmp(aconf->env[j].name, aconf->env_allow[i]);
                val = env_lookup(envp, aconf->env_allow[i]);
                if (!val || overridden)
                        continue;
                len           = strlen(aconf->env_allow[i]) + strlen(val) + 2;
                spec->envp[n] = sq_malloc(len);
                snprintf(spec->envp[n++], len, "%s=%s", aconf->env_allow[i],
                         val);
        }
        for (i = 0; i < aconf->env_cnt; i++) {
                len = strlen(aconf->env[i].name) + strlen(aconf->env[i].value) +
                      2;
                spec->envp[n] = sq_malloc(len);
                snprintf(spec->envp[n++], len, "%s=%s", aconf->env[i].name,
                         aconf->env[i].value);
        }
        /* A bare program name is looked up in the child's PATH, or
         * swarmq's when the child gets none. */
        val = env_lookup(spec->envp, "PATH");
        if (!val)
                val = env_lookup(envp, "PATH");
        spec->path_env = sq_strdup(val ? val : "/usr/local/bin:/usr/bin:/bin");
        if (!strchr(spec->argv[0], '/'))
                spec->path = path_search(spec->argv[0], spec->path_env);
        if (aconf->limit_as_bytes > 0) {
                spec->has_as         = true;
                spec->rl_as.rlim_cur = spec->rl_as.rlim_max =
                    (rlim_t)aconf->limit_as_bytes;
        }
        if (aconf->limit_cpu_seconds > 0) {
                /* SIGXCPU at the soft limit, SIGKILL a second later. */
                spec->has_cpu         = true;
                spec->rl_cpu.rlim_cur = (rlim_t)aconf->limit_cpu_seconds;
                spec->rl_cpu.rlim_max = (rlim_t)aconf->limit_cpu_seconds + 1;
        }
        if (aconf->limit_nofile > 0) {
                spec->has_nofile         = true;
                spec->rl_nofile.rlim_cur = spec->rl_nofile.rlim_max =
                    (rlim_t)aconf->limit_nofile;
        }
        return spec;
}

void sq_spawn_spec_destroy(sq_spawn_spec_t *spec) {
        if (!spec)
                return;
        sq_free(spec->name);
        strv_free(spec->argv);
        sq_free(spec->path);
        strv_free(spec->envp);
        sq_free(spec->path_env);
        sq_free(spec->workdir);
        sq_free(spec);
}

/* The child after fork(): async-signal-safe calls only. */
static SQ_ATTR_NORETURN void child_run(const sq_spawn_spec_t *spec,
                                       const char *path, int in_fd, int out_fd,
                                       int err_fd, int report_fd,
                                       pid_t parent) {
        int fds[3] = {in_fd, out_fd, err_fd};
        int report[2];
        struct sigaction sa;
        sigset_t none;
        int i;

        report[0] = STEP_SETPGID;
        if (setpgid(0, 0) < 0)
                goto fail;
        /* Die with the thread that forked us (the I/O loop). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(127);
        /* The daemon blocks SIGTERM & co. in every thread and ignores
         * SIGPIPE: both would be inherited through exec. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (i = 1; i < NSIG; i++) {
                if (i != SIGKILL && i != SIGSTOP)
                        sigaction(i, &sa, NULL);
        }
        report[0] = STEP_DUP2;
        for (i = 0; i < 3; i++) {
                if (fds[i] < 0)
                        continue;
                if (fds[i] == i) {
                        if (fcntl(i, F_SETFD, 0) < 0)
                                goto fail;
                } else if (dup2(fds[i], i) < 0) {
                        goto fail;
                }
        }
        /* Everything else closes on exec (librdkafka's sockets...). */
        syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
        report[0] = STEP_CHDIR;
        if (spec->workdir && chdir(spec->workdir) < 0)
                goto fail;
        report[0] = STEP_RLIMIT_AS;
        if (spec->has_as && setrlimit(RLIMIT_AS, &spec->rl_as) < 0)
                goto fail;
        report[0] = STEP_RLIMIT_CPU;
        if (spec->has_cpu && setrlimit(RLIMIT_CPU, &spec->rl_cpu) < 0)
                goto fail;
        report[0] = STEP_RLIMIT_NOFILE;
        if (spec->has_nofile && setrlimit(RLIMIT_NOFILE, &spec->rl_nofile) < 0)
                goto fail;
        report[0] = STEP_EXEC;
        execve(path, spec->argv, spec->envp);
fail:
        report[1] = errno;
        while (write(report_fd, report, sizeof(report)) < 0 && errno == EINTR)
                ;
        _exit(127);
}

static void close_fd(int *fd) {
        if (*fd >= 0) {
                close(*fd);
                *fd = -1;
        }
}

void sq_child_close(sq_child_t *child) {
        close_fd(&child->in_fd);
        close_fd(&child->out_fd);
        close_fd(&child->err_fd);
        close_fd(&child->pidfd);
}

sq_err_t sq_spawn(const sq_spawn_spec_t *spec, bool capture_stderr,
                  sq_child_t *child, char *errstr, size_t errstr_size) {
        int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
        int rep_p[2] = {-1, -1};
        char *found  = NULL;
        const char *path;
        int report[2];
        ssize_t r;
        pid_t pid;
        sq_err_t err = SQ_ERR_IO;

        memset(child, 0, sizeof(*child));
        child->pid   = -1;
        child->pidfd = child->in_fd = child->out_fd = child->err_fd = -1;

        if (strchr(spec->argv[0], '/'))
                path = spec->argv[0];
        else if (!(path = spec->path))
                path = found = path_search(spec->argv[0], spec->path_env);
        if (!path) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot execute \"%s\": not found in "
                              "PATH=%s",
                              spec->argv[0], spec->path_env);
                goto done;
        }
        if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 ||
            (capture_stderr && pipe2(err_p, O_CLOEXEC) < 0) ||
            pipe2(rep_p, O_CLOEXEC) < 0) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start \"%s\": pipe2() failed: %s", path,
                              strerror(errno));
                goto done;
        }
        {
                pid_t parent = getpid();
                pid          = fork();
                if (pid == 0)
                        child_run(spec, path, in_p[0], out_p[1], err_p[1],
                                  rep_p[1], parent);
        }
        if (pid < 0) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start \"%s\": fork() failed: %s", path,
                              strerror(errno));
                goto done;
        }
        /* Also race-free for the group: set it from this side too. */
        setpgid(pid, pid);
        close_fd(&in_p[0]);
        close_fd(&out_p[1]);
        close_fd(&err_p[1]);
        close_fd(&rep_p[1]);
        /* EOF: exec succeeded (the pipe closed on exec). */
        do
                r = read(rep_p[0], report, sizeof(report));
        while (r < 0 && errno == EINTR);
        if (r == (ssize_t)sizeof(report)) {
                static const char *const steps[] = {"",
                                                    "setpgid",
                                                    "dup2",
                                                    "chdir",
                                                    "setrlimit(RLIMIT_AS)",
                                                    "setrlimit(RLIMIT_CPU)",
                                                    "setrlimit(RLIMIT_NOFILE)",
                                                    "execve"};
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                if (report[0] == STEP_EXEC)
                        sq_errstr_set(errstr, errstr_size,
                                      "cannot execute \"%s\": %s", path,
                                      strerror(report[1]));
                else if (report[0] == STEP_CHDIR)
                        sq_errstr_set(errstr, errstr_size,
                                      "cannot start \"%s\": cannot change "
                                      "to working directory \"%s\": %s",
                                      path, spec->workdir, strerror(report[1]));
                else
                        sq_errstr_set(
                            errstr, errstr_size, "cannot start \"%s\": %s: %s",
                            path,
                            steps[report[0] > 0 &&
                                          report[0] < (int)SQ_ARRAY_SIZE(steps)
                                      ? report[0]
                                      : 0],
                            strerror(report[1]));
                goto done;
        }
        child->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (child->pidfd < 0) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot watch \"%s\" (pid %d): pidfd_open() "
                              "failed: %s",
                              path, (int)pid, strerror(errno));
                kill(-pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                goto done;
        }
        fcntl(child->pidfd, F_SETFD, FD_CLOEXEC);
        child->pid    = pid;
        child->in_fd  = in_p[1];
        child->out_fd = out_p[0];
        child->err_fd = err_p[0];
        in_p[1] = out_p[0] = err_p[0] = -1;
        fcntl(child->in_fd, F_SETFL, O_NONBLOCK);
        fcntl(child->out_fd, F_SETFL, O_NONBLOCK);
        if (child->err_fd >= 0)
                fcntl(child->err_fd, F_SETFL, O_NONBLOCK);
        err = SQ_OK;
done:
        close_fd(&in_p[0]);
        close_fd(&in_p[1]);
        close_fd(&out_p[0]);
        close_fd(&out_p[1]);
        close_fd(&err_p[0]);
        close_fd(&err_p[1]);
        close_fd(&rep_p[0]);
        close_fd(&rep_p[1]);
        sq_free(found);
        return err;
}

/*
 * exec agents
 */

/* A bounded byte buffer (curl's dynbuf idea): keeps the first `max`
 * bytes, counts the rest. */
typedef struct capbuf_s {
        unsigned char *buf;
        size_t len;
        size_t size;
        size_t max;
        size_t dropped;
} capbuf_t;

static void capbuf_add(capbuf_t *cb, const unsigned char *data, size_t len) {
        size_t room = cb->max - cb->len;
        size_t take = SQ_MIN(room, len);

        if (take) {
                if (cb->len + take > cb->size) {
                        cb->size = SQ_MIN(cb->max,
                                          SQ_MAX(cb->len + take, cb->size * 2));
                        cb->buf  = sq_realloc(cb->buf, cb->size);
                }
                memcpy(cb->buf + cb->len, data, take);
                cb->len += take;
        }
        cb->dropped += len - take;
}

typedef struct proc_s {
        struct proc_s *prev, *next;
        sq_exec_t *ex;
        const sq_task_t *task;
        int64_t deadline_us;
        sq_outcome_cb_t *cb;
        void *opaque;

        sq_child_t child;
        sq_iowatch_t w_in, w_out, w_err, w_pid;
        size_t in_off;
        capbuf_t out, err;
        sq_timer_t deadline, kill;
        bool timed_out;
        bool cancelled;    /* shutdown */
        bool id_cancelled; /* sq_exec_cancel() */
} proc_t;

struct sq_exec_s {
        sq_ioloop_t *loop;
        sq_spawn_spec_t *spec;
        char *name;
        int64_t kill_grace_ms;
        size_t output_max;
        size_t stderr_max;

        /* Loop thread only */
        proc_t *procs;
        bool shutting_down;

        atomic_int running; /* submitted, callback not run yet */
        pthread_mutex_t lock;
        pthread_cond_t cond; /* running reached 0 */
};

sq_exec_t *sq_exec_new(sq_ioloop_t *loop, const sq_agent_conf_t *aconf,
                       char *const *envp) {
        sq_exec_t *ex = sq_calloc(1, sizeof(*ex));

        ex->loop          = loop;
        ex->spec          = sq_spawn_spec_new(aconf, envp);
        ex->name          = sq_strdup(aconf->name);
        ex->kill_grace_ms = aconf->kill_grace_ms;
        ex->output_max    = (size_t)aconf->output_max_bytes;
        ex->stderr_max    = (size_t)aconf->stderr_max_bytes;
        pthread_mutex_init(&ex->lock, NULL);
        pthread_cond_init(&ex->cond, NULL);
        return ex;
}

void sq_exec_destroy(sq_exec_t *ex) {
        if (!ex)
                return;
        sq_assert(!ex->procs);
        sq_spawn_spec_destroy(ex->spec);
        sq_free(ex->name);
        pthread_cond_destroy(&ex->cond);
        pthread_mutex_destroy(&ex->lock);
        sq_free(ex);
}

int sq_exec_running(sq_exec_t *ex) {
        return atomic_load(&ex->running);
}

/* Hands the outcome to the callback and frees the proc (loop thread). */
static void proc_complete(proc_t *proc, sq_outcome_t *outcome) {
        sq_exec_t *ex = proc->ex;

        sq_ioloop_io_stop(ex->loop, &proc->w_in);
        sq_ioloop_io_stop(ex->loop, &proc->w_out);
        sq_ioloop_io_stop(ex->loop, &proc->w_err);
        sq_ioloop_io_stop(ex->loop, &proc->w_pid);
        sq_ioloop_timer_stop(ex->loop, &proc->deadline);
        sq_ioloop_timer_stop(ex->loop, &proc->kill);
        sq_child_close(&proc->child);
        SQ_LIST_UNLINK(ex->procs, proc);
        outcome->cancelled |= proc->cancelled;
        proc->cb(proc->opaque, outcome);
        sq_free(proc->out.buf);
        sq_free(proc->err.buf);
        sq_free(proc);
        pthread_mutex_lock(&ex->lock);
        if (atomic_fetch_sub(&ex->running, 1) == 1)
                pthread_cond_broadcast(&ex->cond);
        pthread_mutex_unlock(&ex->lock);
}

static void fail_now(proc_t *proc, const char *error) {
        sq_outcome_t outcome;
        memset(&outcome, 0, sizeof(outcome));
        outcome.status = SQ_STATUS_FAILED;
        outcome.error  = sq_strdup(error);
        proc_complete(proc, &outcome);
}

/* Reads what a pipe has; false at EOF or on an error. */
static bool drain_into(int fd, capbuf_t *cb) {
        unsigned char buf[READ_CHUNK];
        for (;;) {
                ssize_t r = read(fd, buf, sizeof(buf));
                if (r > 0) {
                        capbuf_add(cb, buf, (size_t)r);
                        continue;
                }
                if (r < 0 && errno == EINTR)
                        continue;
                return r < 0 && errno == EAGAIN;
        }
}

static void on_stdout(void *opaque, uint32_t events) {
        proc_t *proc = opaque;
        (void)events;
        if (!drain_into(proc->child.out_fd, &proc->out)) {
                sq_ioloop_io_stop(proc->ex->loop, &proc->w_out);
                close_fd(&proc->child.out_fd);
        }
}

static void on_stderr(void *opaque, uint32_t events) {
        proc_t *proc = opaque;
        (void)events;
        if (!drain_into(proc->child.err_fd, &proc->err)) {
                sq_ioloop_io_stop(proc->ex->loop, &proc->w_err);
                close_fd(&proc->child.err_fd);
        }
}

static void close_stdin(proc_t *proc) {
        sq_ioloop_io_stop(proc->ex->loop, &proc->w_in);
        close_fd(&proc->child.in_fd);
}

static void on_stdin(void *opaque, uint32_t events) {
        proc_t *proc = opaque;
        (void)events;
        while (proc->in_off < proc->task->payload_len) {
                ssize_t w =
                    write(proc->child.in_fd, proc->task->payload + proc->in_off,
                          proc->task->payload_len - proc->in_off);
                if (w > 0) {
                        proc->in_off += (size_t)w;
                        continue;
                }
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN)
                        return;
                /* EPIPE: the command does not read its stdin; fine. */
                break;
        }
        close_stdin(proc);
}

/* Appends the captured stderr (its tail marker) to an error sentence. */
static char *error_with_stderr(proc_t *proc, const char *what) {
        size_t len  = strlen(what) + proc->err.len + 128;
        char *error = sq_malloc(len);
        size_t n;

        n = (size_t)snprintf(error, len, "%s", what);
        if (proc->err.len) {
                size_t elen = proc->err.len;
                /* One trailing newline is noise in an error string. */
                if (proc->err.buf[elen - 1] == '\n')
                        elen--;
                n += (size_t)snprintf(error + n, len - n, ": %.*s", (int)elen,
                                      (const char *)proc->err.buf);
        }
        if (proc->err.dropped)
                snprintf(error + n, len - n,
                         " [stderr truncated: %zu bytes dropped]",
                         proc->err.dropped);
        return error;
}

static void on_exit_cb(void *opaque, uint32_t events) {
        proc_t *proc  = opaque;
        sq_exec_t *ex = proc->ex;
        sq_outcome_t outcome;
        char what[512];
        int wstatus = 0;
        (void)events;

        /* The command exited (a zombie until reaped): take what it
         * wrote, then kill what is left of its group, then reap. */
        if (proc->child.out_fd >= 0)
                drain_into(proc->child.out_fd, &proc->out);
        if (proc->child.err_fd >= 0)
                drain_into(proc->child.err_fd, &proc->err);
        kill(-proc->child.pid, SIGKILL);
        while (waitpid(proc->child.pid, &wstatus, 0) < 0 && errno == EINTR)
                ;

        memset(&outcome, 0, sizeof(outcome));
        if (proc->id_cancelled) {
                outcome.status = SQ_STATUS_CANCELLED;
                snprintf(what, sizeof(what),
                         "cancelled by its id: process group %d killed",
                         (int)proc->child.pid);
                outcome.error = error_with_stderr(proc, what);
        } else if (proc->timed_out) {
                outcome.status = SQ_STATUS_TIMED_OUT;
                snprintf(what, sizeof(what),
                         "timed out: process group %d killed (SIGTERM, then "
                         "SIGKILL after %lld ms)",
                         (int)proc->child.pid, (long long)ex->kill_grace_ms);
                outcome.error = error_with_stderr(proc, what);
        } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
                outcome.status = SQ_STATUS_SUCCEEDED;
        } else {
                outcome.status = SQ_STATUS_FAILED;
                if (WIFEXITED(wstatus))
                        snprintf(what, sizeof(what), "exited with status %d",
                                 WEXITSTATUS(wstatus));
                else
                        snprintf(what, sizeof(what), "killed by signal %d (%s)",
                                 WTERMSIG(wstatus),
                                 strsignal(WTERMSIG(wstatus)));
                outcome.error = error_with_stderr(proc, what);
        }
        if (proc->out.dropped) {
                char note[160];
                char *error;
                size_t len;
                snprintf(note, sizeof(note),
                         "output truncated to %zu bytes "
                         "(agent.%s.output.max.bytes; %zu bytes dropped)",
                         proc->out.max, ex->name, proc->out.dropped);
                len = strlen(note) +
                      (outcome.error ? strlen(outcome.error) + 2 : 0) + 1;
                error = sq_malloc(len);
                snprintf(error, len, "%s%s%s",
                         outcome.error ? outcome.error : "",
                         outcome.error ? "; " : "", note);
                sq_free(outcome.error);
                outcome.error = error;
        }
        outcome.output     = proc->out.buf;
        outcome.output_len = proc->out.len;
        proc->out.buf      = NULL;
        proc_complete(proc, &outcome);
}

static void on_kill_timer(void *opaque) {
        proc_t *proc = opaque;
        kill(-proc->child.pid, SIGKILL);
}

static void on_deadline(void *opaque) {
        proc_t *proc    = opaque;
        proc->timed_out = true;
        kill(-proc->child.pid, SIGTERM);
        sq_ioloop_timer_start(proc->ex->loop, &proc->kill,
                              sq_clock_us() + proc->ex->kill_grace_ms * 1000);
}

static void start_cb(void *opaque) {
        proc_t *proc  = opaque;
        sq_exec_t *ex = proc->ex;
        char errstr[512];

        SQ_LIST_PUSH(ex->procs, proc);
        if (ex->shutting_down) {
                proc->cancelled = true;
                fail_now(proc, "instance stopping");
                return;
        }
        if (proc->deadline_us && sq_clock_us() >= proc->deadline_us) {
                sq_outcome_t outcome;
                memset(&outcome, 0, sizeof(outcome));
                outcome.status = SQ_STATUS_TIMED_OUT;
                outcome.error  = sq_strdup("timed out before it started");
                proc_complete(proc, &outcome);
                return;
        }
        if (sq_spawn(ex->spec, true, &proc->child, errstr, sizeof(errstr)) !=
            SQ_OK) {
                fail_now(proc, errstr);
                return;
        }
        if (sq_ioloop_io_start(ex->loop, &proc->w_pid, proc->child.pidfd,
                               EPOLLIN, on_exit_cb, proc) ||
            sq_ioloop_io_start(ex->loop, &proc->w_out, proc->child.out_fd,
                               EPOLLIN, on_stdout, proc) ||
            sq_ioloop_io_start(ex->loop, &proc->w_err, proc->child.err_fd,
                               EPOLLIN, on_stderr, proc)) {
                kill(-proc->child.pid, SIGKILL);
                while (waitpid(proc->child.pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                fail_now(proc, "cannot watch the child's pipes");
                return;
        }
        if (proc->task->payload_len &&
            !sq_ioloop_io_start(ex->loop, &proc->w_in, proc->child.in_fd,
                                EPOLLOUT, on_stdin, proc))
                on_stdin(proc, EPOLLOUT);
        else
                close_stdin(proc);
        if (proc->deadline_us)
                sq_ioloop_timer_start(ex->loop, &proc->deadline,
                                      proc->deadline_us);
}

void sq_exec_submit(sq_exec_t *ex, const sq_task_t *task, int64_t deadline_us,
                    sq_outcome_cb_t *cb, void *opaque) {
        proc_t *proc = sq_calloc(1, sizeof(*proc));

        proc->ex          = ex;
        proc->task        = task;
        proc->deadline_us = deadline_us;
        proc->cb          = cb;
        proc->opaque      = opaque;
        proc->child.pid   = -1;
        proc->child.pidfd = proc->child.in_fd = proc->child.out_fd =
            proc->child.err_fd                = -1;
        proc->out.max                         = ex->output_max;
        proc->err.max                         = ex->stderr_max;
        sq_timer_init(&proc->deadline, on_deadline, proc);
        sq_timer_init(&proc->kill, on_kill_timer, proc);
        atomic_fetch_add(&ex->running, 1);
        sq_ioloop_post(ex->loop, start_cb, proc);
}

static void shutdown_cb(void *opaque) {
        sq_exec_t *ex = opaque;
        proc_t *proc;

        ex->shutting_down = true;
        for (proc = ex->procs; proc; proc = proc->next) {
                proc->cancelled = true;
                if (proc->child.pid > 0)
                        kill(-proc->child.pid, SIGKILL);
        }
}

typedef struct cancel_req_s {
        sq_exec_t *ex;
        char task_id[]; /* NUL-terminated */
} cancel_req_t;

static void cancel_cb(void *opaque) {
        cancel_req_t *req = opaque;
        proc_t *proc;

        for (proc = req->ex->procs; proc; proc = proc->next) {
                if (proc->child.pid <= 0 || proc->id_cancelled ||
                    !sq_task_named(proc->task, req->task_id))
                        continue;
                /* on_exit_cb() reaps it and reports CANCELLED. */
                proc->id_cancelled = true;
                kill(-proc->child.pid, SIGKILL);
        }
        sq_free(req);
}

void sq_exec_cancel(sq_exec_t *ex, const char *task_id) {
        size_t len        = strlen(task_id);
        cancel_req_t *req = sq_malloc(sizeof(*req) + len + 1);

        req->ex = ex;
        memcpy(req->task_id, task_id, len + 1);
        sq_ioloop_post(ex->loop, cancel_cb, req);
}

void sq_exec_shutdown(sq_exec_t *ex) {
        sq_ioloop_call(ex->loop, shutdown_cb, ex);
        pthread_mutex_lock(&ex->lock);
        while (atomic_load(&ex->running) > 0)
                pthread_cond_wait(&ex->cond, &ex->lock);
        pthread_mutex_unlock(&ex->lock);
}
