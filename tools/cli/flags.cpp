// Command-line flags.
#include "tools/cli/flags.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/error.h"

namespace raisin::cli {

void Flags::add(const std::string& name, const std::string& default_value, const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{default_value, help};
}

void Flags::add_switch(const std::string& name, const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{"false", help, true};
}

bool Flags::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (arg.rfind("--", 0) != 0)
      throw error("raisin ", command_, ": unexpected argument '", arg, "' (flags look like --name value)");
    std::string name = arg.substr(2), value;
    const size_t equals = name.find('=');
    const bool inline_value = equals != std::string::npos;
    if (inline_value) value = name.substr(equals + 1), name = name.substr(0, equals);
    auto it = flags_.find(name);
    if (it == flags_.end())
      throw error("raisin ", command_, ": unknown flag --", name, " (raisin ", command_, " --help lists them)");
    Flag& flag = it->second;
    if (flag.is_switch) {
      if (inline_value && value != "true" && value != "false")
        throw error("raisin ", command_, ": --", name, " is a switch; give it alone, or =true / =false");
      flag.value = inline_value ? value : "true";
    } else if (inline_value) {
      flag.value = value;
    } else {
      if (i + 1 >= argc) throw error("raisin ", command_, ": --", name, " needs a value");
      flag.value = argv[++i];
    }
    flag.given = true;
  }
  return true;
}

const Flags::Flag& Flags::find(const std::string& name) const {
  auto it = flags_.find(name);
  if (it == flags_.end()) throw error("raisin ", command_, ": internal: no flag --", name);
  return it->second;
}

std::string Flags::str(const std::string& name) const { return find(name).value; }

std::optional<int64_t> parse_whole_number(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE) return std::nullopt;
  return v;
}

std::optional<double> parse_finite_number(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) return std::nullopt;
  return v;
}

int64_t Flags::integer(const std::string& name, int64_t min, int64_t max) const {
  const std::string& text = find(name).value;
  const std::optional<int64_t> parsed = parse_whole_number(text);
  if (!parsed) throw error("raisin ", command_, ": --", name, " needs a whole number, got '", text, "'");
  const int64_t v = *parsed;
  if (v < min || v > max)
    throw error("raisin ", command_, ": --", name, " ", v, " is outside [", min, ", ", max, "]");
  return v;
}

double Flags::real(const std::string& name, double min, double max) const {
  const std::string& text = find(name).value;
  const std::optional<double> parsed = parse_finite_number(text);
  if (!parsed) throw error("raisin ", command_, ": --", name, " needs a number, got '", text, "'");
  const double v = *parsed;
  if (v < min || v > max)
    throw error("raisin ", command_, ": --", name, " ", text, " is outside [", min, ", ", max, "]");
  return v;
}

bool Flags::on(const std::string& name) const { return find(name).value == "true"; }

bool Flags::given(const std::string& name) const { return find(name).given; }

void Flags::set(const std::string& name, const std::string& value) {
  auto it = flags_.find(name);
  if (it == flags_.end()) throw error("raisin ", command_, ": unknown setting '", name, "'");
  it->second.value = value;
}

std::string Flags::help() const {
  std::string out = "usage: raisin " + command_ + " [flags]\n\nflags:\n";
  for (const auto& name : order_) {
    const Flag& f = flags_.at(name);
    std::string left = "  --" + name + (f.is_switch ? "" : " <" + (f.value.empty() ? std::string("value") : f.value) + ">");
    if (left.size() < 30) left.resize(30, ' ');
    else left += "\n" + std::string(30, ' ');
    out += left + f.help + "\n";
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Flags::values() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& name : order_) out.emplace_back(name, flags_.at(name).value);
  return out;
}

}  // namespace raisin::cli
