#include "fragtune/util/result.hpp"

#include <cstring>

namespace fragtune {

std::string Error::describe() const {
    if (sys_errno == 0) return message;
    return message + ": " + std::strerror(sys_errno);
}

}  // namespace fragtune
