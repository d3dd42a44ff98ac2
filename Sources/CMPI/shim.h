// OpenMPI's handles (MPI_COMM_WORLD, MPI_FLOAT, …) are macros over the
// addresses of global structs, which Swift does not import. These static
// inline functions return them so Swift can call them.
#ifndef ESAPN_CMPI_SHIM_H
#define ESAPN_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm esapn_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype esapn_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype esapn_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype esapn_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype esapn_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype esapn_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype esapn_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op esapn_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op esapn_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op esapn_mpi_min(void) { return MPI_MIN; }
static inline void *esapn_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *esapn_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler esapn_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Comm esapn_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline int esapn_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
/* The library's own description (Open MPI: its version and build), callable before MPI_Init. */
static inline void esapn_mpi_library_version(char *buffer, int size) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    buffer[0] = 0;
    if (MPI_Get_library_version(version, &length) != MPI_SUCCESS) return;
    int n = length < size - 1 ? length : size - 1;
    for (int i = 0; i < n; i++) buffer[i] = version[i];
    buffer[n] = 0;
}
#endif
