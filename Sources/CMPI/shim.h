// CMPI shim: exposes OpenMPI's C interface to Swift, with the predefined handles that are macros
// (and so invisible to Swift) wrapped in static inline functions. Only Distributed's MPI files
// (MPICommunicator.swift, CollectiveWatchdog.swift) import this module.
#include <mpi.h>
#include <mpi-ext.h>   // MPIX_Allreduce_init, MPIX_Reduce_scatter_init, MPIX_Allgatherv_init: persistent collectives (MPI-4, an extension in OpenMPI 4.1)

static inline MPI_Comm loom_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm loom_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype loom_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype loom_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype loom_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op loom_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op loom_mpi_max(void) { return MPI_MAX; }
static inline void *loom_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request loom_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *loom_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Info loom_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline int loom_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int loom_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int loom_mpi_success(void) { return MPI_SUCCESS; }
static inline MPI_Datatype loom_mpi_int64(void) { return MPI_INT64_T; }
static inline int loom_mpi_undefined(void) { return MPI_UNDEFINED; }
static inline MPI_Status *loom_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
