// Fuzzes 06-gpt/checkpoint.hpp: CheckpointReader and restore(), as `06-gpt
// sample`, `eval` and `--resume` use them: the model is built from the
// settings the file holds, then its weights and AdamW's moments are read into
// it. The container's CRC is fixed up first, so the mutations reach these checks.
#include "06-gpt/checkpoint.hpp"

constexpr const char* kScratchName = "gpt.ckpt";

#include "fuzz/gpt_checkpoint.hpp"
