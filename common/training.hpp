// The training loop's records and reporting, for the lessons that train with
// a table of settings (06, 07, 08; tooling beside the concept).
#pragma once

namespace nn {

// One loss estimate: the lines "step N: train loss X, val loss Y".
struct EvalRecord {
    int step;
    float train, val;
    double seconds;
};

}  // namespace nn
