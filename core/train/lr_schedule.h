// Learning-rate schedules with linear warmup, with the semantics of HF transformers'
// get_{constant,linear,cosine}_schedule_with_warmup: the lr used by optimizer step k (0-based)
// is peak * multiplier(k).
#pragma once

#include <string>

#include "core/run/choices.h"

namespace ls {

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::kLinear;
  double peak_lr = 1e-4;
  long total_steps = 1;
  long warmup_steps = 0;

  double multiplier(long step) const;
  double lr(long step) const { return peak_lr * multiplier(step); }
};

}  // namespace ls
