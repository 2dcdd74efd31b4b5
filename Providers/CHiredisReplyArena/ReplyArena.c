#include "ReplyArena.h"

#include <stdlib.h>
#include <string.h>

// Replies are carved from blocks of this size; an object larger than a quarter of a block (a
// big payload) gets an allocation of its own, freed at the next reset.
enum { BLOCK_SIZE = 64 * 1024, LARGE_OBJECT = BLOCK_SIZE / 4, RETAINED_BLOCKS = 16, ALIGNMENT = 16 };

typedef struct block {
    struct block *next;
    size_t used;
    unsigned char data[];  // 16 bytes in, so as aligned as malloc's result
} block;

struct abe_reply_arena {
    block *first;
    block *current;
    block *large;
};

abe_reply_arena *abe_reply_arena_create(void) {
    return calloc(1, sizeof(abe_reply_arena));
}

static void *arena_allocate(abe_reply_arena *arena, size_t size) {
    size = (size + ALIGNMENT - 1) & ~(size_t)(ALIGNMENT - 1);
    if (size > LARGE_OBJECT) {
        block *own = malloc(sizeof(block) + size);
        if (own == NULL) return NULL;
        own->next = arena->large;
        own->used = size;
        arena->large = own;
        return own->data;
    }
    while (arena->current == NULL || arena->current->used + size > BLOCK_SIZE) {
        if (arena->current != NULL && arena->current->next != NULL) {
            arena->current = arena->current->next;
            continue;
        }
        block *fresh = malloc(sizeof(block) + BLOCK_SIZE);
        if (fresh == NULL) return NULL;
        fresh->next = NULL;
        fresh->used = 0;
        if (arena->current == NULL) {
            arena->first = fresh;
        } else {
            arena->current->next = fresh;
        }
        arena->current = fresh;
    }
    void *memory = arena->current->data + arena->current->used;
    arena->current->used += size;
    return memory;
}

void abe_reply_arena_reset(abe_reply_arena *arena) {
    while (arena->large != NULL) {
        block *next = arena->large->next;
        free(arena->large);
        arena->large = next;
    }
    int kept = 0;
    block **link = &arena->first;
    while (*link != NULL) {
        if (kept < RETAINED_BLOCKS) {
            (*link)->used = 0;
            kept += 1;
            link = &(*link)->next;
        } else {
            block *surplus = *link;
            *link = surplus->next;
            free(surplus);
        }
    }
    arena->current = arena->first;
}

void abe_reply_arena_destroy(abe_reply_arena *arena) {
    if (arena == NULL) return;
    abe_reply_arena_reset(arena);
    while (arena->first != NULL) {
        block *next = arena->first->next;
        free(arena->first);
        arena->first = next;
    }
    free(arena);
}

// The object for `task`, linked into its parent array like hiredis's own functions do.
static redisReply *create_reply(const redisReadTask *task, int type) {
    redisReply *reply = arena_allocate(task->privdata, sizeof(redisReply));
    if (reply == NULL) return NULL;
    memset(reply, 0, sizeof(*reply));
    reply->type = type;
    if (task->parent != NULL) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = reply;
    }
    return reply;
}

static void *create_string(const redisReadTask *task, char *text, size_t length) {
    char *copy = arena_allocate(task->privdata, length + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, text, length);
    copy[length] = '\0';
    redisReply *reply = create_reply(task, task->type);
    if (reply == NULL) return NULL;
    reply->str = copy;
    reply->len = length;
    return reply;
}

static void *create_array(const redisReadTask *task, int elements) {
    redisReply **children = NULL;
    if (elements > 0) {
        children = arena_allocate(task->privdata, (size_t)elements * sizeof(redisReply *));
        if (children == NULL) return NULL;
        memset(children, 0, (size_t)elements * sizeof(redisReply *));
    }
    redisReply *reply = create_reply(task, REDIS_REPLY_ARRAY);
    if (reply == NULL) return NULL;
    reply->element = children;
    reply->elements = elements > 0 ? (size_t)elements : 0;
    return reply;
}

static void *create_integer(const redisReadTask *task, long long value) {
    redisReply *reply = create_reply(task, REDIS_REPLY_INTEGER);
    if (reply != NULL) reply->integer = value;
    return reply;
}

static void *create_nil(const redisReadTask *task) {
    return create_reply(task, REDIS_REPLY_NIL);
}

// hiredis frees a reply itself only when reading fails, and the connection is then dropped and
// its arena destroyed: nothing to do here.
static void free_object(void *reply) {
    (void)reply;
}

static redisReplyObjectFunctions arena_functions = {
    create_string, create_array, create_integer, create_nil, free_object,
};

void abe_reply_arena_attach(abe_reply_arena *arena, redisReader *reader) {
    reader->fn = &arena_functions;
    reader->privdata = arena;
}
