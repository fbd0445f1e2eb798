/*
 * scheduler.h: the scheduler of one process (scheduler.c), run by the pool.
 *
 * The pool is the layer above: it starts and stops the scheduler, and the
 * scheduler reaches it only through core.h (st_pool_wake,
 * st_pool_aux_wait), never through the pool's internals.
 */
#ifndef ST_SCHEDULER_H
#define ST_SCHEDULER_H

#include "core.h"

typedef struct st_sched st_sched;

/* Opens the scheduler's connection and starts its thread. */
int st_sched_start(stellar *h, st_pool *p, st_sched **out, stellar_error *e);
/* Joins the thread (the pool has set aux_stop), releases the leader lock if
 * held, frees. NULL is fine. */
void st_sched_stop(st_sched *s);

#endif /* ST_SCHEDULER_H */
