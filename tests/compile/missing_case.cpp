// Compiled by the ctest test `werror_switch` with fragtune_warnings' flags, and expected to fail:
// the switch below misses an enumerator, which -Werror=switch must turn into an error.
enum class Colour { red, green, blue };

int value(Colour c) {
    switch (c) {
        case Colour::red:
            return 1;
        case Colour::green:
            return 2;
    }
    return 0;
}
