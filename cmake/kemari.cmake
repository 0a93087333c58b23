# Helpers shared by every folder's CMakeLists.txt.
#
# km_unit_test(NAME SOURCES a.c b.c LIBS x y)
#   A Criterion suite, labelled "unit". Runs on the host, also under ASan.
# km_host_test(NAME LABEL integration COMMAND cmd args... [TIMEOUT s])
#   A host test driven by a command (usually a script), labelled LABEL.
# km_lab_test(NAME COMMAND cmd args... [TIMEOUT s] [TOPOLOGY single|pair])
#   A command run inside the lab (a real Debian kernel under QEMU TCG),
#   labelled "lab". Never run under the sanitizers: the lab runs the plain
#   build's binaries.

set(KM_LAB_RUN ${PROJECT_SOURCE_DIR}/tests/lab/lab-run)

function(km_unit_test name)
	cmake_parse_arguments(A "" "" "SOURCES;LIBS" ${ARGN})
	add_executable(${name} ${A_SOURCES})
	target_link_libraries(${name} PRIVATE PkgConfig::CRITERION ${A_LIBS})
	add_test(NAME ${name} COMMAND ${name} --jobs 1)
	set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120)
endfunction()

function(km_host_test name)
	cmake_parse_arguments(A "" "LABEL;TIMEOUT" "COMMAND" ${ARGN})
	if(NOT A_TIMEOUT)
		set(A_TIMEOUT 300)
	endif()
	add_test(NAME ${name} COMMAND ${A_COMMAND})
	set_tests_properties(${name} PROPERTIES LABELS ${A_LABEL}
			     TIMEOUT ${A_TIMEOUT}
			     ENVIRONMENT "KEMARI_BUILD=${PROJECT_BINARY_DIR};KEMARI_SRC=${PROJECT_SOURCE_DIR}")
endfunction()

function(km_lab_test name)
	cmake_parse_arguments(A "" "TIMEOUT;TOPOLOGY" "COMMAND" ${ARGN})
	if(NOT A_TIMEOUT)
		set(A_TIMEOUT 600)
	endif()
	if(NOT A_TOPOLOGY)
		set(A_TOPOLOGY single)
	endif()
	if(KEMARI_SANITIZE)
		return()
	endif()
	math(EXPR inner "${A_TIMEOUT} - 30")
	add_test(NAME ${name}
		 COMMAND ${KM_LAB_RUN} --timeout ${inner}
			 --topology ${A_TOPOLOGY} -- ${A_COMMAND})
	set_tests_properties(${name} PROPERTIES LABELS lab
			     TIMEOUT ${A_TIMEOUT} RUN_SERIAL TRUE
			     FIXTURES_REQUIRED lab_ready
			     ENVIRONMENT "KEMARI_BUILD=${PROJECT_BINARY_DIR};KEMARI_SRC=${PROJECT_SOURCE_DIR}")
endfunction()

# km_add_suites()
#   Every sub-folder of the current folder with a CMakeLists.txt is one
#   suite (or a group of them); a new suite needs no edit here.
macro(km_add_suites)
	file(GLOB km_subdirs LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/*)
	foreach(d ${km_subdirs})
		if(IS_DIRECTORY ${d} AND EXISTS ${d}/CMakeLists.txt)
			add_subdirectory(${d})
		endif()
	endforeach()
endmacro()
