// A small command-line flag parser: `--name value`, `--name=value` and bare `--switch`. Every flag is
// declared with a default and a help line; unknown flags, missing values and malformed numbers are
// errors that name the flag and say what was expected.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace raisin::cli {

// The whole of `text` as a whole number, or as a finite real number (strtoll / strtod syntax); nullopt
// when it is anything else or out of range. Flags::integer and Flags::real read values with these.
std::optional<int64_t> parse_whole_number(const std::string& text);
std::optional<double> parse_finite_number(const std::string& text);

class Flags {
 public:
  explicit Flags(std::string command) : command_(std::move(command)) {}

  // Declarations (in the order --help lists them).
  void add(const std::string& name, const std::string& default_value, const std::string& help);
  void add_switch(const std::string& name, const std::string& help);

  // Parses argv[first..]; throws raisin::Error on a bad flag. Returns false when --help was given
  // (the help text has then been printed).
  bool parse(int argc, char** argv, int first);

  std::string str(const std::string& name) const;
  int64_t integer(const std::string& name, int64_t min, int64_t max) const;
  double real(const std::string& name, double min, double max) const;
  bool on(const std::string& name) const;
  bool given(const std::string& name) const;  // set on the command line (not defaulted)
  std::string help() const;
  // name → value of every flag, for saving a run's configuration.
  std::vector<std::pair<std::string, std::string>> values() const;
  void set(const std::string& name, const std::string& value);  // e.g. from a checkpoint on resume

 private:
  struct Flag {
    std::string value, help;
    bool is_switch = false, given = false;
  };
  const Flag& find(const std::string& name) const;
  std::string command_;
  std::vector<std::string> order_;
  std::map<std::string, Flag> flags_;
};

}  // namespace raisin::cli
