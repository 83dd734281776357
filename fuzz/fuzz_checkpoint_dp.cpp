// Fuzzes 08-data-parallel/checkpoint.hpp (06's format with a magic of its
// own): CheckpointReader and restore(), as `--resume` uses them. The
// container's CRC is fixed up first, so the mutations reach these checks.
#include "08-data-parallel/checkpoint.hpp"

constexpr const char* kScratchName = "dp.ckpt";

#include "fuzz/gpt_checkpoint.hpp"
