# HvRevision.cmake: run by the hv_revision target at every build (cmake -P),
# so `healthivert version` and the benches' result lines name the source
# tree that was compiled, not the one cmake was configured at. Writes OUT
# from IN with PROJECT_VERSION and HV_GIT_REV (HvGitRev.cmake: the short
# HEAD hash, "-dirty" for uncommitted changes). configure_file rewrites OUT
# only when its text changes, so an unchanged tree recompiles nothing.
# Inputs (-D): SRC (source tree), IN, OUT, PROJECT_VERSION.
include(${CMAKE_CURRENT_LIST_DIR}/HvGitRev.cmake)
hv_git_rev(${SRC} HV_GIT_REV)
configure_file(${IN} ${OUT} @ONLY)
