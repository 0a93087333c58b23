# kmod-bench: per-exit cost of kemari.ko in the lab (kmod-bench.c says
# what it measures). Included from bench/CMakeLists.txt. The smoke run is
# the lab test lab_kmod_bench (tests/lab/kmod/CMakeLists.txt).
find_package(Threads REQUIRED)
add_executable(kmod-bench ${CMAKE_CURRENT_LIST_DIR}/kmod-bench.c)
target_link_libraries(kmod-bench PRIVATE kemari-gate lab-kvm-util
		      PkgConfig::JSONC Threads::Threads)
