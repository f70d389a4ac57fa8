// The enum <-> string table helpers, and the tables built on them round-trip.
#include "fragtune/util/enum_names.hpp"

#include <gtest/gtest.h>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/persisting/state_file.hpp"

using namespace fragtune;

namespace {

enum class Colour { red, green, blue };
constexpr EnumName<Colour> kColours[] = {
    {Colour::red, "red"}, {Colour::green, "green"}, {Colour::blue, "blue"}};
static_assert(enum_rows_in_order(kColours));
constexpr EnumName<Colour> kShuffled[] = {{Colour::green, "green"}, {Colour::red, "red"}};
static_assert(!enum_rows_in_order(kShuffled));

}  // namespace

TEST(EnumNames, BothDirectionsFromOneTable) {
    EXPECT_EQ(enum_name(kColours, Colour::green), "green");
    EXPECT_EQ(enum_from_name(kColours, "blue"), Colour::blue);
    EXPECT_FALSE(enum_from_name(kColours, "Blue"));  // exact
    EXPECT_FALSE(enum_from_name(kColours, ""));
    EXPECT_EQ(enum_name(kShuffled, Colour::blue), "?");
    EXPECT_EQ(enum_name(kShuffled, Colour::blue, "red"), "red");
}

TEST(EnumNames, ModesAndStatesRoundTrip) {
    for (Mode m : {Mode::active, Mode::observe, Mode::paused})
        EXPECT_EQ(mode_from_string(to_string(m)), m);
    EXPECT_FALSE(mode_from_string("Active"));
    EXPECT_EQ(to_string(OnExit::keep), "keep");
    EXPECT_EQ(to_string(OnExit::restore), "restore");
    EXPECT_EQ(to_string(StateLoadStatus::future_version), "future_version");
    EXPECT_EQ(to_string(StateLoadStatus::unreadable), "unreadable");
}

// One table per enum: the names the daemon shows are the state file's keys.
TEST(EnumNames, StatusesAndActionsRoundTripThroughTheOneTable) {
    for (KnobStatus st : {KnobStatus::tuning, KnobStatus::pinned, KnobStatus::conflict,
                          KnobStatus::failed, KnobStatus::unsupported, KnobStatus::disabled}) {
        EXPECT_EQ(knob_status_from_string(to_string(st)), st);
        EXPECT_EQ(status_key(st), to_string(st));
        EXPECT_EQ(status_from_key(to_string(st)), st);
    }
    for (Action a : {Action::raise, Action::lower, Action::decay, Action::kick, Action::refuse,
                     Action::pin, Action::compact}) {
        EXPECT_EQ(action_from_string(to_string(a)), a);
        EXPECT_EQ(action_key(a), to_string(a));
        EXPECT_EQ(action_from_key(to_string(a)), a);
    }
    EXPECT_EQ(to_string(KnobStatus::unsupported), "unsupported");
    EXPECT_EQ(to_string(Action::compact), "compact");
    EXPECT_FALSE(knob_status_from_string("Tuning"));
    EXPECT_FALSE(action_from_string("raise "));
}
