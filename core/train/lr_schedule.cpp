// Learning-rate schedules (see lr_schedule.h).
#include "core/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace ls {

double LrSchedule::multiplier(long step) const {
  if (step < warmup_steps) return static_cast<double>(step) / std::max(1L, warmup_steps);
  double progress =
      static_cast<double>(step - warmup_steps) / std::max(1L, total_steps - warmup_steps);
  switch (kind) {
    case ScheduleKind::kConstant:
      return 1.0;
    case ScheduleKind::kLinear:
      return std::max(0.0, 1.0 - progress);
    case ScheduleKind::kCosine:
      return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  }
  return 1.0;
}

}  // namespace ls
