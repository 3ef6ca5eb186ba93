/* error.c: thread-local last-error message (see error.h). */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char error_message[1024];
static _Thread_local aqa_status error_status = AQA_OK;

static void record(aqa_status status, const char *fmt, va_list ap) {
    /* format into a scratch buffer first: callers often wrap the previous message
     * (aqa_fail(st, "loading %s: %s", path, aqa_last_error())), which would otherwise make
     * vsnprintf read the buffer it writes */
    char scratch[sizeof error_message];
    vsnprintf(scratch, sizeof scratch, fmt, ap);
    memcpy(error_message, scratch, sizeof error_message);
    error_status = status;
}

aqa_status aqa_fail(aqa_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record(status, fmt, ap);
    va_end(ap);
    return status;
}

void *aqa_fail_null(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record(AQA_EINVAL, fmt, ap);
    va_end(ap);
    return NULL;
}

const char *aqa_last_error(void) { return error_message; }
aqa_status aqa_last_status(void) { return error_status; }

void aqa_clear_error(void) {
    error_message[0] = '\0';
    error_status = AQA_OK;
}

const char *aqa_status_name(aqa_status status) {
    switch (status) {
    case AQA_OK: return "AQA_OK";
    case AQA_EINVAL: return "AQA_EINVAL";
    case AQA_EIO: return "AQA_EIO";
    case AQA_EFORMAT: return "AQA_EFORMAT";
    case AQA_ENOMEM: return "AQA_ENOMEM";
    case AQA_EUNSUPPORTED: return "AQA_EUNSUPPORTED";
    case AQA_EDEVICE: return "AQA_EDEVICE";
    case AQA_ESTATE: return "AQA_ESTATE";
    }
    return "AQA_E?";
}
