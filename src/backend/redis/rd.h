/*
 * rd.h: what the Redis backend's files share. For now: the scripts, which
 * cmake/lua.cmake assembles from the lua/ folder into rd_lua[].
 */
#ifndef ST_REDIS_RD_H
#define ST_REDIS_RD_H

/* The scripts, one per lua/<name>.lua (RD_S_<NAME>): rd_lua[] is generated
 * from them, and the build fails if a name has no file or the reverse. */
enum {
    RD_S_CLEAN,
    RD_S_DEL_DELAYED,
    RD_S_DEL_DELAYED_AT,
    RD_S_FAILED_REMOVE,
    RD_S_KV_DEL,
    RD_S_KV_EXPIRE,
    RD_S_PROMOTE,
    RD_S_PUSH_AT,
    RD_S_READY,
    RD_S_REPLACE,
    RD_S_RESERVE,
    RD_S_COUNT
};

/* The text of each script, as sent with SCRIPT LOAD. */
extern const char *const rd_lua[RD_S_COUNT];

#endif /* ST_REDIS_RD_H */
