/*
 * sentinel.h: finding a Redis primary through Sentinel, and noticing when
 * Sentinel moves it (sentinel.c). The Redis backend's connection code holds
 * one st_sentinel per connection whose URL is redis+sentinel://...
 */
#ifndef ST_SENTINEL_H
#define ST_SENTINEL_H

#include "stellar.h"

#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct st_sentinel st_sentinel;

/*
 * Parses the part of a redis+sentinel URL after its userinfo,
 * "host1:port1,host2:port2,.../MASTER_NAME[/db]" (s[0..n)), and the query
 * (may be NULL; sentinelUser=, sentinelPassword= authenticate to the
 * sentinels, not to Redis). *db: the database number if the URL has one
 * (left alone otherwise). timeout_ms bounds each sentinel round trip.
 * shown: the URL as messages may show it. Starts (or joins) the
 * process-wide watch of +switch-master for this set of sentinels.
 * Not thread-safe: one connection, one thread, as redisContext.
 */
int st_sentinel_open(st_sentinel **out, const char *s, size_t n,
                     const char *query, int64_t timeout_ms, int *db,
                     const char *shown, stellar_error *e);
void st_sentinel_close(st_sentinel *s);

/*
 * Asks the sentinels, in turn, for the current primary's address
 * (SENTINEL get-master-addr-by-name) and stores it in *host / *port, and
 * "host:port (primary of NAME)" in *where (both replaced; the old strings
 * freed). The error names each sentinel and what it said (down, does not
 * know the name, refused AUTH).
 */
int st_sentinel_locate(st_sentinel *s, char **host, int *port, char **where,
                       stellar_error *e);

/* Whether Sentinel announced a new primary for this master (+switch-master)
 * since the last call: the caller drops its links and locates again. */
bool st_sentinel_switched(st_sentinel *s);

/* Checks the reply to ROLE on a freshly located primary: STELLAR_OK if it
 * says "master", else an error naming where and what it is. */
int st_sentinel_check_role(const redisReply *r, const char *where,
                           stellar_error *e);

/* A reply that says the server is a replica now (-READONLY). */
bool st_sentinel_readonly(const redisReply *r);

#endif
