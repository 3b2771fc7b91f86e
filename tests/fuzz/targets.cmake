# The fuzz targets: tests/fuzz/fuzz_<name>.c each, plus the sources of a binary one
# needs beyond libcm (CM_FUZZ_EXTRA_<name>). Used by tests/CMakeLists.txt (replay tests)
# and tests/fuzz/CMakeLists.txt (the libFuzzer build).
file(GLOB _cm_fuzz_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.c)
set(CM_FUZZ_TARGETS "")
foreach(src IN LISTS _cm_fuzz_sources)
  get_filename_component(_name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" _name ${_name})
  list(APPEND CM_FUZZ_TARGETS ${_name})
endforeach()
# cm-api's request-body parsing lives in the cm-api binary, not libcm.
set(CM_FUZZ_EXTRA_api_json ${PROJECT_SOURCE_DIR}/producer/api/api_body.c)
