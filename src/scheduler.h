/*
 * scheduler.h: the scheduler of one process (scheduler.c), run by the pool.
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

/* Sleeps up to ms or until the pool is woken; true once aux_stop is set. */
bool st_pool_aux_wait(st_pool *p, int64_t ms);

#endif /* ST_SCHEDULER_H */
