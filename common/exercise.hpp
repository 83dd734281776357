// The workbook's stub. `scripts/exercise start LESSON` copies a lesson into
// mine/ and replaces the body of each exercise (a function marked
// `// Exercise: NAME` in the lesson) with a call to exercise_not_written, so
// that the copy compiles and each unwritten exercise fails its checks with a
// message that says what to do next.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace nn {

struct ExerciseNotWritten : std::logic_error {
    using std::logic_error::logic_error;
};

// `file`: where the learner writes it, e.g. "mine/02-backprop/network.hpp".
[[noreturn]] inline void exercise_not_written(const char* lesson, const char* name, const char* file) {
    throw ExerciseNotWritten(fmt::format("exercise {} is not written yet: write it in {} (hint: scripts/exercise hint {} {})",
                                         name, file, lesson, name));
}

}  // namespace nn
