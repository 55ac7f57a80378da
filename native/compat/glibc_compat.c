// Compiled only into a *prebuilt* Linux glibc binary (binding.gyp, rnnkit_portable=1; .ci/prebuild-linux.sh), never
// into a build from source.
//
// A binary linked on a new glibc records the newest version of every glibc symbol it calls, and an older glibc
// refuses to load it ("version `GLIBC_2.34' not found"). This file defines, with hidden visibility, the few functions
// whose newest versions are recent, as forwarders to their original versions, which every glibc still exports and
// which behave the same for these calls. Being defined in the binary itself, they take the calls of rnnkit's own code
// and of the libstdc++ linked in statically (-static-libstdc++), and nothing is exported.
//   dlopen, dlsym, dlerror, dlclose               GLIBC_2.34 (libdl merged into libc); the originals are in libdl.so.2
//                                                 before 2.34, so the prebuild also records libdl.so.2 as needed
//   pthread_create, _join, _detach, _once,        GLIBC_2.34 (libpthread merged into libc); the same, libpthread.so.0
//   _key_create, _key_delete, _getspecific,       is loaded by every Node on such systems
//   _setspecific
//   exp, log, pow                                 GLIBC_2.29 (versions without SVID error handling)
//   expf, logf, powf                              GLIBC_2.27 (same)
//   __libc_single_threaded                        GLIBC_2.32: libstdc++ reads it to skip atomics; here it is always 0
//                                                 ("maybe several threads"), which is always correct
//   arc4random, getentropy                        GLIBC_2.36 / 2.25, for std::random_device: the getrandom system call
// What remains needs at most GLIBC_2.18; .ci/prebuild-linux.sh checks it with objdump -T.
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#include <features.h>
#endif

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define RNNKIT_GLIBC_BASE "GLIBC_2.2.5"
#else
#define RNNKIT_GLIBC_BASE "GLIBC_2.17"
#endif

// rnnkit_old_NAME refers to NAME@<base version>.
#define RNNKIT_OLD(ret, name, params) \
  extern ret rnnkit_old_##name params; \
  __asm__(".symver rnnkit_old_" #name "," #name "@" RNNKIT_GLIBC_BASE)

typedef unsigned long rnnkit_pthread_t;
typedef unsigned int rnnkit_pthread_key_t;

RNNKIT_OLD(void*, dlopen, (const char*, int));
RNNKIT_OLD(void*, dlsym, (void*, const char*));
RNNKIT_OLD(char*, dlerror, (void));
RNNKIT_OLD(int, dlclose, (void*));
RNNKIT_OLD(int, pthread_create, (rnnkit_pthread_t*, const void*, void* (*)(void*), void*));
RNNKIT_OLD(int, pthread_join, (rnnkit_pthread_t, void**));
RNNKIT_OLD(int, pthread_detach, (rnnkit_pthread_t));
RNNKIT_OLD(int, pthread_once, (int*, void (*)(void)));
RNNKIT_OLD(int, pthread_key_create, (rnnkit_pthread_key_t*, void (*)(void*)));
RNNKIT_OLD(int, pthread_key_delete, (rnnkit_pthread_key_t));
RNNKIT_OLD(void*, pthread_getspecific, (rnnkit_pthread_key_t));
RNNKIT_OLD(int, pthread_setspecific, (rnnkit_pthread_key_t, const void*));
RNNKIT_OLD(double, exp, (double));
RNNKIT_OLD(double, log, (double));
RNNKIT_OLD(double, pow, (double, double));
RNNKIT_OLD(float, expf, (float));
RNNKIT_OLD(float, logf, (float));
RNNKIT_OLD(float, powf, (float, float));
RNNKIT_OLD(long, syscall, (long, ...));

#pragma GCC visibility push(hidden)

void* dlopen(const char* file, int mode) { return rnnkit_old_dlopen(file, mode); }
void* dlsym(void* handle, const char* name) { return rnnkit_old_dlsym(handle, name); }
char* dlerror(void) { return rnnkit_old_dlerror(); }
int dlclose(void* handle) { return rnnkit_old_dlclose(handle); }

int pthread_create(rnnkit_pthread_t* thread, const void* attr, void* (*start)(void*), void* arg) {
  return rnnkit_old_pthread_create(thread, attr, start, arg);
}
int pthread_join(rnnkit_pthread_t thread, void** result) { return rnnkit_old_pthread_join(thread, result); }
int pthread_detach(rnnkit_pthread_t thread) { return rnnkit_old_pthread_detach(thread); }
int pthread_once(int* once, void (*init)(void)) { return rnnkit_old_pthread_once(once, init); }
int pthread_key_create(rnnkit_pthread_key_t* key, void (*destructor)(void*)) {
  return rnnkit_old_pthread_key_create(key, destructor);
}
int pthread_key_delete(rnnkit_pthread_key_t key) { return rnnkit_old_pthread_key_delete(key); }
void* pthread_getspecific(rnnkit_pthread_key_t key) { return rnnkit_old_pthread_getspecific(key); }
int pthread_setspecific(rnnkit_pthread_key_t key, const void* value) {
  return rnnkit_old_pthread_setspecific(key, value);
}

double exp(double x) { return rnnkit_old_exp(x); }
double log(double x) { return rnnkit_old_log(x); }
double pow(double x, double y) { return rnnkit_old_pow(x, y); }
float expf(float x) { return rnnkit_old_expf(x); }
float logf(float x) { return rnnkit_old_logf(x); }
float powf(float x, float y) { return rnnkit_old_powf(x, y); }

char __libc_single_threaded = 0;

int getentropy(void* buffer, size_t length) {
  if (length > 256) {
    errno = EIO;
    return -1;
  }
  unsigned char* p = (unsigned char*)buffer;
  while (length > 0) {
    long n = rnnkit_old_syscall(SYS_getrandom, p, length, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    length -= (size_t)n;
  }
  return 0;
}

uint32_t arc4random(void) {
  uint32_t value = 0;
  if (getentropy(&value, sizeof value) != 0) __builtin_trap();
  return value;
}

#pragma GCC visibility pop

#endif
