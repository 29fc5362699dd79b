// Toolchain smoke under mpirun: every rank takes part in an all-reduce and sees the same sum.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "parallel/mpi.h"

TEST(MpiSmoke, AllReduceSumsEveryRank) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<double> mine = {static_cast<double>(rank), 1.0};
  std::vector<double> sum(2);
  LS_MPI_CHECK(MPI_Allreduce(mine.data(), sum.data(), 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  EXPECT_EQ(sum[0], size * (size - 1) / 2.0);
  EXPECT_EQ(sum[1], static_cast<double>(size));
}

TEST(MpiSmoke, WorldSizeIsWhatTheLauncherAskedFor) {
  // CTest passes the expected size; a launcher that silently ran one process would fail here.
  const char* expected = std::getenv("LS_EXPECT_WORLD_SIZE");
  ASSERT_NE(expected, nullptr);
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(size, std::atoi(expected));
}

TEST(MpiSmoke, FailedCallIsNamedInTheError) {
  int bogus_count = -1;
  double x = 0;
  try {
    LS_MPI_CHECK(MPI_Bcast(&x, bogus_count, MPI_DOUBLE, 0, MPI_COMM_WORLD));
    FAIL() << "MPI_Bcast with a negative count should fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("MPI_Bcast"), std::string::npos) << e.what();
  }
}
