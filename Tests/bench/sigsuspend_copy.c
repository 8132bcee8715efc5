/*
 * Preloaded into the servers that the benchmark runs under valgrind.
 *
 * libdispatch's main loop calls sigsuspend(2) with a mask in read-only memory, and
 * valgrind 3.19 (Debian's) writes into the mask it is given, so it dies of SIGSEGV before
 * the server answers. This sigsuspend hands the real one a copy on the stack.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>

int sigsuspend(const sigset_t *mask) {
    static int (*real)(const sigset_t *);
    if (!real) real = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
    sigset_t copy = *mask;
    return real(&copy);
}
