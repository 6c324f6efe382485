/*
 * shm.h - buffers in memory the processes of one machine share, and the all_reduce and
 * broadcast that run through them (shm.c; lc_dist_zeros_shared in lucid_distributed.h).
 *
 * Internal to liblucid_distributed. shm_setup, shm_teardown, shm_alloc, shm_all_reduce,
 * shm_broadcast and shm_all_gather call MPI and run on the communication thread only; shm_find and
 * the release of a region (its tensor's death) may run on any thread.
 */
#ifndef LUCID_DIST_SHM_H
#define LUCID_DIST_SHM_H

#include "lucid_distributed.h"

#include <mpi.h>
#include <stddef.h>

typedef struct shm_region shm_region;

/* Returned (with msg set) when the ranks' calls did not match: sizes for shm_alloc, parts of a
 * buffer for shm_all_reduce. Every rank of the group sees the same mismatch. */
#define SHM_REFUSED (-1)

/* Builds the groups of processes that share memory (MPI_COMM_TYPE_SHARED; the environment
 * variable LUCID_DIST_SHM_GROUP=n cuts them into groups of n, so one machine can test the
 * path across machines) and the communicator that links the same member of every group.
 * Shared buffers are used only when enabled, every group has the same size, and that size
 * is > 1; otherwise shm_alloc returns no region. Collective over world. */
void shm_setup(MPI_Comm world, int world_rank, bool enabled);
void shm_teardown(void); /* frees the communicators; live regions stay mapped */

/* Collective over world: every rank's segment of a new region of `bytes`, zeroed, in *data
 * (page-aligned), or *region = NULL when shared buffers are off or the memory could not be
 * mapped on some rank (every rank then gets NULL: the decision is the world's). Returns
 * MPI_SUCCESS, an MPI error code, or SHM_REFUSED when the ranks asked for different sizes. */
int shm_alloc(size_t bytes, void **data, shm_region **region, char *msg, size_t cap);
/* The tensor's release callback (lc_from_buffer): drops the tensor's reference on the region,
 * unmapped with the last one. */
void shm_release(void *region, void *data);
/* For a peer view: the address of byte `offset` of the segment of world rank world_rank, which
 * must be in this process's group (NULL otherwise), and a new reference on r, dropped by
 * shm_release. */
void *shm_peer(shm_region *r, size_t offset, int world_rank);

/* The region whose own segment holds [p, p + bytes), and p's byte offset in it; NULL if none. */
shm_region *shm_find(const void *p, size_t bytes, size_t *offset);

/* In place, on the caller's `numel` elements at byte `offset` of its segment in r: the sum
 * (avg: divided by world_size) over every rank's same elements. Each member of a group
 * reduces 1/group of the elements from all the group's segments (across groups, with MPI
 * between the members of the same index), then writes the result into every segment. Returns
 * MPI_SUCCESS, an MPI error code, or SHM_REFUSED. */
int shm_all_reduce(shm_region *r, size_t offset, int64_t numel, lc_dtype dt, lc_dist_op op,
                   int world_size, uint64_t seq, char *msg, size_t cap);

/* In place, on the caller's `numel` elements at byte `offset` of its segment in r: the root's
 * (0-based world rank) same elements. Members copy from the root's segment, or across machines
 * from the segment of the member with the root's index, which MPI gave the root's data. Returns
 * MPI_SUCCESS, an MPI error code, or SHM_REFUSED. */
int shm_broadcast(shm_region *r, size_t offset, int64_t numel, lc_dtype dt, int root, uint64_t seq,
                  char *msg, size_t cap);

/* In place, on world_size blocks of `block` elements from byte `offset` of the caller's
 * segment, block w being world rank w's contribution: every block from its rank's segment
 * (across machines, gathered first over MPI by the members of each index). Returns
 * MPI_SUCCESS, an MPI error code, or SHM_REFUSED. */
int shm_all_gather(shm_region *r, size_t offset, int64_t block, lc_dtype dt, int world_size,
                   uint64_t seq, char *msg, size_t cap);

#endif
