#include "cmpi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Open MPI's handles are pointers to its predefined objects, which the library exports under
// these names (mpi.h defines MPI_COMM_WORLD as &ompi_mpi_comm_world, and so on).
typedef void *handle;
enum { MPI_THREAD_FUNNELED_OMPI = 1, MPI_MAX_PROCESSOR_NAME_OMPI = 256, MPI_MAX_LIBRARY_VERSION_OMPI = 256 };

static void *library;
static handle comm_world, byte_type;
static int (*init_thread)(int *, char ***, int, int *);
static int (*comm_rank)(handle, int *);
static int (*comm_size)(handle, int *);
static int (*get_processor_name)(char *, int *);
static int (*iallgatherv)(const void *, int, handle, void *, const int *, const int *, handle, handle, handle *);
static int (*iallgather)(const void *, int, handle, void *, int, handle, handle, handle *);
static int (*ibcast)(void *, int, handle, int, handle, handle *);
static int (*test)(handle *, int *, void *);
static int (*abort_)(handle, int);
static int (*finalize)(void);
static int (*library_version)(char *, int *);

#define LOAD(variable, symbol)                                                                          \
    do {                                                                                                \
        *(void **)(&variable) = dlsym(library, symbol);                                                 \
        if (!variable) {                                                                                \
            snprintf(error, error_size, "%s has no symbol %s (is it Open MPI?)", path, symbol);         \
            return 1;                                                                                   \
        }                                                                                               \
    } while (0)

int wb_mpi_load(char *error, size_t error_size) {
    if (library) return 0;
    const char *override = getenv("WORKBENCH_LIBMPI");
    const char *candidates[] = {override, "libmpi.so.40", "libmpi.so"};
    const char *path = NULL;
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates && !library; i++) {
        if (!candidates[i]) continue;
        path = candidates[i];
        // RTLD_GLOBAL: Open MPI's plug-ins resolve symbols of libmpi when they are loaded.
        library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    }
    if (!library) {
        snprintf(error, error_size, "cannot load Open MPI's libmpi (%s); install libopenmpi-dev and openmpi-bin (scripts/setup.sh does)",
                 dlerror());
        return 1;
    }
    comm_world = dlsym(library, "ompi_mpi_comm_world");
    byte_type = dlsym(library, "ompi_mpi_byte");
    if (!comm_world || !byte_type) {
        snprintf(error, error_size, "%s is not Open MPI's libmpi (no ompi_mpi_comm_world); the data-parallel mode needs Open MPI", path);
        return 1;
    }
    LOAD(init_thread, "MPI_Init_thread");
    LOAD(comm_rank, "MPI_Comm_rank");
    LOAD(comm_size, "MPI_Comm_size");
    LOAD(get_processor_name, "MPI_Get_processor_name");
    LOAD(iallgatherv, "MPI_Iallgatherv");
    LOAD(iallgather, "MPI_Iallgather");
    LOAD(ibcast, "MPI_Ibcast");
    LOAD(test, "MPI_Test");
    LOAD(abort_, "MPI_Abort");
    LOAD(finalize, "MPI_Finalize");
    LOAD(library_version, "MPI_Get_library_version");
    return 0;
}

int wb_mpi_init(int *rank, int *size) {
    int provided = 0;
    int status = init_thread(NULL, NULL, MPI_THREAD_FUNNELED_OMPI, &provided);
    if (status) return status;
    if ((status = comm_rank(comm_world, rank))) return status;
    return comm_size(comm_world, size);
}

int wb_mpi_processor_name(char *name, size_t name_size) {
    char buffer[MPI_MAX_PROCESSOR_NAME_OMPI + 1] = {0};
    int length = 0;
    int status = get_processor_name(buffer, &length);
    snprintf(name, name_size, "%s", buffer);
    return status;
}

int wb_mpi_iallgatherv(const void *send, int send_bytes, void *receive, const int *receive_bytes,
                       const int *displacements, void **request) {
    return iallgatherv(send, send_bytes, byte_type, receive, receive_bytes, displacements, byte_type, comm_world, request);
}

int wb_mpi_iallgather(const void *send, int bytes, void *receive, void **request) {
    return iallgather(send, bytes, byte_type, receive, bytes, byte_type, comm_world, request);
}

int wb_mpi_ibcast(void *buffer, int bytes, int root, void **request) {
    return ibcast(buffer, bytes, byte_type, root, comm_world, request);
}

int wb_mpi_test(void **request, int *done) { return test(request, done, NULL); }

void wb_mpi_abort(int code) {
    if (abort_) abort_(comm_world, code);
    _exit(code);
}

int wb_mpi_finalize(void) { return finalize ? finalize() : 0; }

int wb_mpi_library_version(char *text, size_t text_size) {
    char buffer[MPI_MAX_LIBRARY_VERSION_OMPI + 1] = {0};
    int length = 0;
    int status = library_version(buffer, &length);
    snprintf(text, text_size, "%s", buffer);
    return status;
}
