#ifndef ABE_REPLY_ARENA_H
#define ABE_REPLY_ARENA_H
// Reply objects for hiredis allocated from a per-connection arena instead of one malloc per
// object (hiredis makes about ten for each stream entry of an XREADGROUP reply).
//
// A connection thread attaches an arena to its context once, reads a reply, hands it out, and
// then resets the arena instead of calling freeReplyObject: every object of that reply is gone
// at once, and the memory is reused for the next reply. hiredis builds one reply at a time, so
// the arena holds at most the reply being read and the one being handed out, never both.
#include <hiredis/hiredis.h>

typedef struct abe_reply_arena abe_reply_arena;

// A new arena, or NULL when out of memory.
abe_reply_arena *abe_reply_arena_create(void);

// Makes `reader` (a context's `reader`) allocate its replies from `arena`. The arena must
// outlive the reader.
void abe_reply_arena_attach(abe_reply_arena *arena, redisReader *reader);

// Frees every reply allocated so far; keeps a bounded amount of memory for the next ones.
void abe_reply_arena_reset(abe_reply_arena *arena);

// Frees the arena and all its memory.
void abe_reply_arena_destroy(abe_reply_arena *arena);

#endif
