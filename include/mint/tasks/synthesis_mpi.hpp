// mint/tasks/synthesis_mpi.hpp -- dynamic hand-out of synthesis batches over MPI ranks (issue 16, docs/scale.md).
// Needs <mpi.h>: link mint::mpi (CMake option MINT_WITH_MPI), which mint::mint alone does not.
//
// Rank 0 coordinates and also works (on a 2-core machine a pure coordinator would idle half of it): it takes
// batches from the same queue as everyone, and answers the workers' requests between its own iterations (the
// poll callback of InvertBatch) and, once the queue is empty, until every worker was told to stop. A worker
// sends a Report (the batch it finished, or none) and gets the next batch index, or -1 to stop; a slow rank
// therefore gets fewer batches. Every rank writes its own shards; rank 0 alone records them and rewrites the
// manifest after each. Which rank ran a batch never changes its bytes (mint/tasks/synthesis.hpp).
#pragma once

#include <mpi.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <string>

#include "mint/tasks/synthesis.hpp"

namespace mint::tasks {

namespace detail {

inline constexpr int kReportTag = 16001, kAssignTag = 16002;

// A worker's message to rank 0: the batch it finished (-1: none yet) and its shard record.
struct BatchReport {
  std::int64_t batch = -1;
  std::int64_t images = 0;
  double gemm_flops = 0.0, invert_seconds = 0.0, write_seconds = 0.0;
  char sha256[65] = {};
};

inline void mpi_check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(mint::detail::concat("MPI: ", what, " failed: ", std::string(msg, static_cast<std::size_t>(len))));
  }
}

}  // namespace detail

// This rank's index among the ranks on its node (for one GPU per rank: device = local_rank % device count).
inline int mpi_local_rank(MPI_Comm comm) {
  MPI_Comm node;
  detail::mpi_check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  int r = 0;
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  return r;
}

// Runs the batches `todo` over the ranks of `comm`. On rank 0, on_done(entry, rank) is called for every finished
// batch (its own and the workers'), in the order they finish; other ranks pass their entries to rank 0.
// requires: every rank calls it with the same dir, manifest plan and seed; `todo` matters on rank 0 only.
inline void run_batches_mpi(MPI_Comm comm, const std::string& dir, const ShardManifest& m, std::uint64_t seed,
                            const std::vector<std::int64_t>& todo, const InvertBatch& invert,
                            const std::function<void(const ShardEntry&, int rank)>& on_done) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (rank != 0) {  // worker: report (nothing yet), get a batch, run it, report it, ...
    detail::BatchReport rep;
    for (;;) {
      detail::mpi_check(MPI_Send(&rep, sizeof rep, MPI_BYTE, 0, detail::kReportTag, comm), "MPI_Send (report)");
      std::int64_t j = -1;
      detail::mpi_check(MPI_Recv(&j, 1, MPI_INT64_T, 0, detail::kAssignTag, comm, MPI_STATUS_IGNORE),
                        "MPI_Recv (assignment)");
      if (j < 0) return;
      const ShardEntry e = run_batch(dir, m, seed, j, invert);
      rep.batch = j, rep.images = e.record.images, rep.gemm_flops = e.gemm_flops;
      rep.invert_seconds = e.invert_seconds, rep.write_seconds = e.write_seconds;
      std::memcpy(rep.sha256, e.record.sha256.c_str(), std::min<std::size_t>(64, e.record.sha256.size()));
      rep.sha256[64] = '\0';
    }
  }
  std::deque<std::int64_t> queue(todo.begin(), todo.end());
  int stopped = 0;
  auto answer = [&](bool block) {  // serve pending reports (block: wait for at least one)
    for (;;) {
      int flag = 0;
      MPI_Status st;
      if (block) {
        detail::mpi_check(MPI_Probe(MPI_ANY_SOURCE, detail::kReportTag, comm, &st), "MPI_Probe");
        flag = 1;
        block = false;
      } else {
        detail::mpi_check(MPI_Iprobe(MPI_ANY_SOURCE, detail::kReportTag, comm, &flag, &st), "MPI_Iprobe");
      }
      if (!flag) return;
      detail::BatchReport rep;
      detail::mpi_check(
          MPI_Recv(&rep, sizeof rep, MPI_BYTE, st.MPI_SOURCE, detail::kReportTag, comm, MPI_STATUS_IGNORE),
          "MPI_Recv (report)");
      if (rep.batch >= 0) {
        rep.sha256[64] = '\0';
        ShardEntry e{{rep.batch, shard_file_name(rep.batch), std::string(rep.sha256), rep.images}, rep.gemm_flops};
        e.invert_seconds = rep.invert_seconds, e.write_seconds = rep.write_seconds;
        on_done(e, st.MPI_SOURCE);
      }
      std::int64_t next = -1;
      if (!queue.empty()) {
        next = queue.front();
        queue.pop_front();
      } else {
        ++stopped;
      }
      detail::mpi_check(MPI_Send(&next, 1, MPI_INT64_T, st.MPI_SOURCE, detail::kAssignTag, comm), "MPI_Send (assign)");
    }
  };
  const std::function<void()> poll = [&] { answer(false); };
  answer(false);
  while (!queue.empty()) {
    const std::int64_t j = queue.front();
    queue.pop_front();
    on_done(run_batch(dir, m, seed, j, invert, poll), 0);
    answer(false);
  }
  while (stopped < size - 1) answer(true);
}

}  // namespace mint::tasks
