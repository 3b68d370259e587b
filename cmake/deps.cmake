# GoogleTest and Google Benchmark: Debian's packages when installed, else the copies that
# ../shared/tools/stage-data --build-deps puts under .data/ (for a GPU host without those packages).
set(RAISIN_STAGED_DEPS ${PROJECT_SOURCE_DIR}/.data CACHE PATH "Folder with staged googletest/ and benchmark/")

if(RAISIN_TESTS)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    if(EXISTS ${RAISIN_STAGED_DEPS}/googletest/CMakeLists.txt)
      set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
      add_subdirectory(${RAISIN_STAGED_DEPS}/googletest ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL SYSTEM)
      add_library(GTest::gtest ALIAS gtest)
      add_library(GTest::gtest_main ALIAS gtest_main)
    else()
      message(FATAL_ERROR "GoogleTest not found: apt-get install libgtest-dev, or stage it with "
                          "../shared/tools/stage-data --build-deps")
    endif()
  endif()
  include(GoogleTest)
endif()

if(RAISIN_BENCH)
  find_package(benchmark QUIET)
  if(NOT benchmark_FOUND)
    if(EXISTS ${RAISIN_STAGED_DEPS}/benchmark/include/benchmark/benchmark.h)
      add_library(benchmark::benchmark UNKNOWN IMPORTED)
      set_target_properties(benchmark::benchmark PROPERTIES
        IMPORTED_LOCATION ${RAISIN_STAGED_DEPS}/benchmark/lib/libbenchmark.so
        INTERFACE_INCLUDE_DIRECTORIES ${RAISIN_STAGED_DEPS}/benchmark/include)
    else()
      message(FATAL_ERROR "Google Benchmark not found: apt-get install libbenchmark-dev, or configure "
                          "with -DRAISIN_BENCH=OFF")
    endif()
  endif()
endif()
