/* debug.c: the debug mode that catches use of a freed tensor (AQA_DEBUG=1, or a build configured
 * with --enable-debug; AQA_DEBUG=0 turns it off there).
 *
 * In debug mode a tensor struct whose last reference goes is not handed back to malloc: it is
 * poisoned (marked freed, pointed at a storage without data) and kept in a bounded quarantine
 * with the place it died -- the scope whose end freed it, or the aqa_tensor_free call.  Every
 * entry point that takes a tensor checks the mark (aqa__alive), so a use after free fails with a
 * message naming both the use and the place of death instead of reading recycled memory.  Freed
 * CPU buffers are overwritten with 0xff bytes (NaN as floats) first, so a stale aqa_data pointer
 * reads NaN rather than plausible numbers.  The quarantine holds the last QUARANTINE structs;
 * older ones are freed for real (a use of those is caught by AddressSanitizer in a debug build). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/tensor-impl.h"

enum { QUARANTINE = 4096 }; /* dead structs kept poisoned (about 1 MiB) */

#ifdef AQA_DEBUG_BUILD
#define DEBUG_DEFAULT 1
#else
#define DEBUG_DEFAULT 0
#endif

static int debug_mode = -1; /* -1: not decided yet (AQA_DEBUG is read on first use) */

bool aqa__debug(void) {
    int m = __atomic_load_n(&debug_mode, __ATOMIC_RELAXED);
    if (m < 0) {
        const char *e = getenv("AQA_DEBUG");
        m = e && *e ? strcmp(e, "0") != 0 : DEBUG_DEFAULT;
        __atomic_store_n(&debug_mode, m, __ATOMIC_RELAXED);
    }
    return m != 0;
}

bool aqa_set_debug(bool on) {
    bool prev = aqa__debug();
    __atomic_store_n(&debug_mode, on ? 1 : 0, __ATOMIC_RELAXED);
    return prev;
}

bool aqa_is_debug(void) { return aqa__debug(); }

/* The storage every dead tensor points at: no data, never released (its count stays huge). */
static aqa_storage dead_storage = {.data = NULL, .nbytes = 0, .device = {AQA_CPU, 0}, .refcount = 1 << 30};

typedef struct {
    aqa_tensor *t;     /* the poisoned struct */
    aqa__free_site at; /* where it died */
} dead_entry;

static dead_entry quarantine[QUARANTINE]; /* a ring: next slot to fill at `head` */
static int head;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static _Thread_local const aqa__free_site *current_site; /* what is freeing tensors on this thread */

const aqa__free_site *aqa__set_free_site(const aqa__free_site *site) {
    const aqa__free_site *prev = current_site;
    current_site = site;
    return prev;
}

void aqa__poison_bytes(void *data, size_t nbytes) { memset(data, 0xff, nbytes); }

void aqa__quarantine(aqa_tensor *t) {
    t->refcount = AQA__FREED;
    t->storage = &dead_storage;
    t->grad = NULL;
    t->grad_fn = NULL;
    t->owner = NULL;
    t->owner_slot = -1;
    t->requires_grad = false;
    aqa__free_site at = current_site ? *current_site : (aqa__free_site){0};
    pthread_mutex_lock(&lock);
    dead_entry old = quarantine[head];
    quarantine[head] = (dead_entry){t, at};
    head = (head + 1) % QUARANTINE;
    pthread_mutex_unlock(&lock);
    if (old.t) {
        free(old.t->name);
        free(old.t);
    }
}

bool aqa__report_freed(const char *op, const aqa_tensor *t) {
    aqa__free_site at = {0};
    pthread_mutex_lock(&lock);
    for (int i = 0; i < QUARANTINE; i++)
        if (quarantine[i].t == t) at = quarantine[i].at;
    pthread_mutex_unlock(&lock);
    char where[512], shape[128];
    if (at.kind == AQA__FREED_BY_SCOPE)
        snprintf(where, sizeof where, "freed at the end of the scope opened at %s:%d and closed at %s:%d (aqa_keep "
                 "moves a result out of its scope)", at.file ? at.file : "?", at.line, at.end_file ? at.end_file : "?",
                 at.end_line);
    else if (at.kind == AQA__FREED_BY_CALL)
        snprintf(where, sizeof where, "freed by aqa_tensor_free at %s:%d", at.file ? at.file : "?", at.line);
    else
        snprintf(where, sizeof where, "freed when its last reference (a view, a graph node) was released");
    aqa_fail(AQA_ESTATE, "%s: use of a freed tensor%s%s (%s %s), %s", op, t->name ? " " : "", t->name ? t->name : "",
             aqa_dtype_name(t->dtype), aqa_shape_str(t, shape, sizeof shape), where);
    /* debug mode is asked for: say it at once too, since a caller may drop the status */
    fprintf(stderr, "aqa debug: %s\n", aqa_last_error());
    return false;
}
