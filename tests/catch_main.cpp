// The one Catch2 main of the suite. The tests run with the threads the
// lessons use: OpenMP's (OMP_NUM_THREADS), and none of Eigen's own.
#define CATCH_CONFIG_RUNNER
#include <omp.h>

#include <catch2/catch.hpp>

#include "common/threads.hpp"

int main(int argc, char* argv[]) {
    nn::set_threads(omp_get_max_threads());
    return Catch::Session().run(argc, argv);
}
