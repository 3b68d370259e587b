// raisin's one exception type: every user-facing failure (bad shape, dtype, device, file, flag) throws
// an Error whose message names the thing that is wrong and, where there is one, the fix.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace raisin {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Builds a message from any streamable parts: throw error("linear: input ", shape, " ...").
template <typename... Parts>
Error error(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return Error(out.str());
}

}  // namespace raisin
