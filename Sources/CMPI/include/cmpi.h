// The few MPI calls data-parallel training needs, loaded from Open MPI's libmpi at run time
// (dlopen), so that the workbench builds and runs on machines without MPI and gains the
// data-parallel mode wherever `libopenmpi-dev`/`openmpi-bin` are installed.
#pragma once
#include <stddef.h>

// Loads libmpi (WORKBENCH_LIBMPI, else libmpi.so.40, else libmpi.so). 0 on success; otherwise
// writes why into `error`.
int wb_mpi_load(char *error, size_t error_size);
// MPI_Init_thread(MPI_THREAD_FUNNELED), then the world rank and size.
int wb_mpi_init(int *rank, int *size);
int wb_mpi_processor_name(char *name, size_t name_size);
// Non-blocking collectives on MPI_COMM_WORLD over bytes; `request` receives the handle.
int wb_mpi_iallgatherv(const void *send, int send_bytes, void *receive, const int *receive_bytes,
                       const int *displacements, void **request);
int wb_mpi_iallgather(const void *send, int bytes, void *receive, void **request);
int wb_mpi_ibcast(void *buffer, int bytes, int root, void **request);
// MPI_Test: *done = 1 when the request has completed.
int wb_mpi_test(void **request, int *done);
void wb_mpi_abort(int code);
int wb_mpi_finalize(void);
// The library's version string (MPI_Get_library_version), for the manifest.
int wb_mpi_library_version(char *text, size_t text_size);
