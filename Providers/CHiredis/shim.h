#ifndef ABE_CHIREDIS_SHIM_H
#define ABE_CHIREDIS_SHIM_H
// Debian 12's libhiredis-dev (hiredis 0.14.1): the synchronous API only; no TLS, no RESP3.
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

// glibc declares pthread_setname_np only under _GNU_SOURCE, which Swift's Glibc module does not
// set. Connection threads name themselves so that profilers and `top -H` show which is which.
extern int pthread_setname_np(pthread_t thread, const char *name);

static inline int abe_name_current_thread(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

// A write to a socket the server closed raises SIGPIPE in the writing thread, whose default
// action ends the whole process. Connection threads block it, so hiredis sees EPIPE, reports an
// I/O error and the connection reconnects; the signal is thread-directed, so the application's
// own SIGPIPE handling stays as it chose.
static inline int abe_block_sigpipe_on_current_thread(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}
#endif
