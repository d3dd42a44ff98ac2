// The C source of the allocation counting library that `esapn train
// --count-allocations` reads (through dlsym), and its build at test time
// with clang or cc, whichever exists (Swift's toolchain ships clang).
import Foundation
import TestSupport
import XCTest

enum AllocationCountingLibrary {
    /// Compiles the library into `directory` and returns its path.
    static func build(in directory: URL, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let source = directory.appendingPathComponent("countmalloc.c")
        let library = directory.appendingPathComponent("libcountmalloc.so")
        try cSource.write(to: source, atomically: true, encoding: .utf8)
        guard let compiler = ["clang", "cc", "gcc"].lazy.compactMap({ MPIRun.executableOnPath($0) }).first else {
            XCTFail("no C compiler (clang, cc or gcc) on PATH to build the allocation counter", file: file, line: line)
            throw XCTSkip("unreachable: failed above")
        }
        let result = try runProcess(compiler, ["-shared", "-fPIC", "-O2", "-Wall", "-o", library.path, source.path, "-ldl"])
        XCTAssertEqual(result.status, 0, "building the allocation counter with \(compiler.path): \(result.report)",
                       file: file, line: line)
        return library
    }

    static let cSource = #"""
// Counts calls to the C allocator (malloc, calloc, realloc, posix_memalign,
// aligned_alloc, memalign, valloc, pvalloc) in the whole process, for
// `esapn train --count-allocations`:
//   esapn_malloc_calls()          every call;
//   esapn_malloc_calls_in_mpi()   the calls made directly by Open MPI's own
//                                 libraries (libmpi, open-pal, open-rte, its
//                                 MCA components, PMIx, libevent, hwloc), found
//                                 from the caller's address with dladdr.
// Build and preload:
//   cc -shared -fPIC -O2 -o libcountmalloc.so countmalloc.c -ldl
// (AllocationCountingLibrary.build does this in the tests.)
//   LD_PRELOAD=$PWD/libcountmalloc.so esapn train … --count-allocations
// Every wrapper forwards to the next definition (glibc's) found with
// dlsym(RTLD_NEXT). dlsym itself may allocate before the real functions are
// known: those few early requests are served from a static bootstrap buffer
// (and never freed), so resolving never recurses.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static uint64_t calls, calls_in_mpi;

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*aligned_fn)(size_t, size_t);
typedef void (*free_fn)(void *);

static malloc_fn real_malloc, real_valloc, real_pvalloc;
static calloc_fn real_calloc;
static realloc_fn real_realloc;
static posix_memalign_fn real_posix_memalign;
static aligned_fn real_aligned_alloc, real_memalign;
static free_fn real_free;
static int resolving;

static _Alignas(64) unsigned char bootstrap[1 << 16];
static size_t bootstrap_used;

static void *bootstrap_alloc(size_t n) {
    size_t need = (n + 63) & ~(size_t)63;
    size_t at = __atomic_fetch_add(&bootstrap_used, need, __ATOMIC_RELAXED);
    if (at + need > sizeof bootstrap) { errno = ENOMEM; return NULL; }
    return bootstrap + at;
}

static int from_bootstrap(const void *p) {
    return (const unsigned char *)p >= bootstrap && (const unsigned char *)p < bootstrap + sizeof bootstrap;
}

static void resolve(void) {
    if (real_free || resolving) return;
    resolving = 1;
    real_malloc = (malloc_fn)dlsym(RTLD_NEXT, "malloc");
    real_calloc = (calloc_fn)dlsym(RTLD_NEXT, "calloc");
    real_realloc = (realloc_fn)dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = (posix_memalign_fn)dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = (aligned_fn)dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = (aligned_fn)dlsym(RTLD_NEXT, "memalign");
    real_valloc = (malloc_fn)dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = (malloc_fn)dlsym(RTLD_NEXT, "pvalloc");
    real_free = (free_fn)dlsym(RTLD_NEXT, "free");
    resolving = 0;
}

__attribute__((constructor)) static void countmalloc_init(void) { resolve(); }

static int in_mpi_library(const void *caller) {
    static const char *const names[] = {"libmpi", "libopen-pal", "libopen-rte", "/openmpi/", "libpmix",
                                        "libevent", "libhwloc", "libucp", "libucs", "libuct", "libfabric"};
    Dl_info info;
    if (!caller || !dladdr(caller, &info) || !info.dli_fname) return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strstr(info.dli_fname, names[i])) return 1;
    return 0;
}

// Counts one call made from `caller` (the allocator function's return address).
static inline void count(const void *caller) {
    __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
    if (in_mpi_library(caller)) __atomic_fetch_add(&calls_in_mpi, 1, __ATOMIC_RELAXED);
}
#define COUNT() count(__builtin_return_address(0))

__attribute__((visibility("default"))) uint64_t esapn_malloc_calls(void) {
    return __atomic_load_n(&calls, __ATOMIC_RELAXED);
}

__attribute__((visibility("default"))) uint64_t esapn_malloc_calls_in_mpi(void) {
    return __atomic_load_n(&calls_in_mpi, __ATOMIC_RELAXED);
}

void *malloc(size_t n) {
    resolve();
    if (!real_malloc) return bootstrap_alloc(n);
    COUNT();
    return real_malloc(n);
}

void *calloc(size_t k, size_t n) {
    resolve();
    if (!real_calloc) return bootstrap_alloc(k * n);   // static memory is zero
    COUNT();
    return real_calloc(k, n);
}

void *realloc(void *p, size_t n) {
    resolve();
    COUNT();
    if (from_bootstrap(p)) {
        // The old size is unknown: copy what can be there (bootstrap blocks are never reused).
        void *q = real_malloc(n);
        size_t room = (size_t)(bootstrap + sizeof bootstrap - (unsigned char *)p);
        if (q) memcpy(q, p, n < room ? n : room);
        return q;
    }
    return real_realloc(p, n);
}

int posix_memalign(void **out, size_t alignment, size_t n) {
    resolve();
    COUNT();
    return real_posix_memalign(out, alignment, n);
}

void *aligned_alloc(size_t alignment, size_t n) { resolve(); COUNT(); return real_aligned_alloc(alignment, n); }
void *memalign(size_t alignment, size_t n) { resolve(); COUNT(); return real_memalign(alignment, n); }
void *valloc(size_t n) { resolve(); COUNT(); return real_valloc(n); }
void *pvalloc(size_t n) { resolve(); COUNT(); return real_pvalloc(n); }

void free(void *p) {
    if (!p || from_bootstrap(p)) return;
    resolve();
    real_free(p);
}
"""#
}
