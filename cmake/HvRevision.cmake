# HvRevision.cmake: run by the hv_revision target at every build (cmake -P),
# so `healthivert version` and the benches' result lines name the source
# tree that was compiled, not the one cmake was configured at. Writes OUT
# from IN with PROJECT_VERSION and HV_GIT_REV = the short HEAD hash, plus
# "-dirty" when tracked files differ from HEAD ("unknown" outside git).
# configure_file rewrites OUT only when its text changes, so an unchanged
# tree recompiles nothing.
# Inputs (-D): SRC (source tree), IN, OUT, PROJECT_VERSION.
execute_process(COMMAND git -C ${SRC} rev-parse --short=12 HEAD
                OUTPUT_VARIABLE HV_GIT_REV OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR NOT HV_GIT_REV)
  set(HV_GIT_REV "unknown")
else()
  execute_process(COMMAND git -C ${SRC} diff --quiet HEAD --
                  ERROR_QUIET RESULT_VARIABLE _dirty)
  if(NOT _dirty EQUAL 0)
    string(APPEND HV_GIT_REV "-dirty")
  endif()
endif()
configure_file(${IN} ${OUT} @ONLY)
