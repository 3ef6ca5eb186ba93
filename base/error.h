/* error.h: how aqa reports failure.
 *
 * The library never exits and never prints from deep inside.  A function that can fail returns
 * an aqa_status (AQA_OK == 0, errors negative) or, for functions that return an object, NULL;
 * either way it first records a message naming the file, tensor or argument at fault with
 * aqa_set_error().  The caller reads it with aqa_last_error() (thread-local, like errno). */
#ifndef AQA_ERROR_H
#define AQA_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_status {
    AQA_OK = 0,
    AQA_EINVAL = -1,       /* bad argument: shape, dtype, value out of range */
    AQA_EIO = -2,          /* a file could not be opened, read or written */
    AQA_EFORMAT = -3,      /* a file's content is malformed, truncated or inconsistent */
    AQA_ENOMEM = -4,       /* an allocation failed (host or device) */
    AQA_EUNSUPPORTED = -5, /* valid request this build or device cannot serve */
    AQA_EDEVICE = -6,      /* a CUDA runtime / driver / NVRTC failure */
    AQA_ESTATE = -7        /* called in the wrong state (e.g. backward twice without retain) */
} aqa_status;

/* Records the message for the calling thread and returns `status`, so that a failing function
 * (the arguments may include aqa_last_error() itself, to wrap the previous message)
 * can end with `return aqa_fail(AQA_EIO, "%s: cannot open: %s", path, strerror(errno));`. */
aqa_status aqa_fail(aqa_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, for functions that return a pointer: records the message and returns NULL. */
void *aqa_fail_null(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last recorded message of this thread ("" when none). */
const char *aqa_last_error(void);
/* The status code of the last recorded failure of this thread (AQA_OK when none). */
aqa_status aqa_last_status(void);
void aqa_clear_error(void);
/* Short constant name of a status ("AQA_EIO"). */
const char *aqa_status_name(aqa_status status);

#ifdef __cplusplus
}
#endif

#endif /* AQA_ERROR_H */
