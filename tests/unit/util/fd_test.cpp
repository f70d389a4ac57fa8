// UniqueFd: closes what it owns exactly once, on destruction, reset or move-assignment.
#include "fragtune/util/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include <gtest/gtest.h>

using fragtune::UniqueFd;

namespace {

bool is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

int open_null() {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    return fd;
}

}  // namespace

TEST(UniqueFd, ClosesOnScopeExitAndReset) {
    const int fd = open_null();
    {
        UniqueFd u(fd);
        EXPECT_TRUE(u.valid());
        EXPECT_EQ(u.get(), fd);
        EXPECT_TRUE(is_open(fd));
    }
    EXPECT_FALSE(is_open(fd));

    const int a = open_null();
    UniqueFd u(a);
    const int b = open_null();
    u.reset(b);
    EXPECT_FALSE(is_open(a));
    EXPECT_TRUE(is_open(b));
    u.reset();
    EXPECT_FALSE(is_open(b));
    EXPECT_FALSE(u.valid());
    EXPECT_FALSE(static_cast<bool>(UniqueFd()));
}

TEST(UniqueFd, MoveTransfersOwnershipAndReleaseGivesItUp) {
    const int fd = open_null();
    UniqueFd a(fd);
    UniqueFd b(std::move(a));
    EXPECT_EQ(a.get(), -1);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_EQ(b.get(), fd);

    const int other = open_null();
    UniqueFd c(other);
    c = std::move(b);  // closes what c owned
    EXPECT_FALSE(is_open(other));
    EXPECT_EQ(c.get(), fd);

    const int raw = c.release();
    EXPECT_EQ(raw, fd);
    EXPECT_FALSE(c.valid());
    EXPECT_TRUE(is_open(fd));  // released, not closed
    ::close(raw);
}
