// The run's choices a config names (model.device, model.attention, task.class_weights,
// output.save, train.schedule), each an enum with its name table (core/base/enum_names.h).
// Torch-free, so the config (config.h) holds them typed and the libraries above it (core/train's
// LR schedule) read them without the config.
#pragma once

#include "core/base/enum_names.h"

namespace ls {

enum class DeviceChoice { kAuto, kCpu, kCuda };        // model.device
enum class AttentionMode { kCausal, kBidirectional };  // model.attention
enum class ClassWeightsMode { kNone, kAuto, kList };   // task.class_weights
enum class SaveMode { kBest, kLast, kBoth };           // output.save: which adapters to keep

template <>
struct EnumNames<DeviceChoice> {
  static constexpr std::string_view what = "device";
  static constexpr EnumName<DeviceChoice> table[] = {
      {DeviceChoice::kAuto, "auto"}, {DeviceChoice::kCpu, "cpu"}, {DeviceChoice::kCuda, "cuda"}};
};
template <>
struct EnumNames<AttentionMode> {
  static constexpr std::string_view what = "attention";
  static constexpr EnumName<AttentionMode> table[] = {
      {AttentionMode::kCausal, "causal"}, {AttentionMode::kBidirectional, "bidirectional"}};
};
template <>
struct EnumNames<ClassWeightsMode> {
  static constexpr std::string_view what = "class weights mode";
  static constexpr EnumName<ClassWeightsMode> table[] = {{ClassWeightsMode::kNone, "none"},
                                                         {ClassWeightsMode::kAuto, "auto"},
                                                         {ClassWeightsMode::kList, "list"}};
};
template <>
struct EnumNames<SaveMode> {
  static constexpr std::string_view what = "save mode";
  static constexpr EnumName<SaveMode> table[] = {
      {SaveMode::kBest, "best"}, {SaveMode::kLast, "last"}, {SaveMode::kBoth, "both"}};
};

// Learning-rate schedule after warmup (core/train/lr_schedule.h).
enum class ScheduleKind { kConstant, kLinear, kCosine };

template <>
struct EnumNames<ScheduleKind> {
  static constexpr std::string_view what = "schedule";
  static constexpr EnumName<ScheduleKind> table[] = {{ScheduleKind::kConstant, "constant"},
                                                     {ScheduleKind::kLinear, "linear"},
                                                     {ScheduleKind::kCosine, "cosine"}};
};

}  // namespace ls
