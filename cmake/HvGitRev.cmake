# HvGitRev.cmake: hv_git_rev(SRC OUT) sets OUT to the short HEAD hash of the
# git tree at SRC, plus "-dirty" when tracked files differ from HEAD, or
# "unknown" outside git (a tarball, `git archive`). Used at configure time
# (HvDependencies.cmake, for the summary) and at every build
# (HvRevision.cmake, for core/version.c).
function(hv_git_rev src out)
  execute_process(COMMAND git -C ${src} rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE rev OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT rev)
    set(rev "unknown")
  else()
    execute_process(COMMAND git -C ${src} diff --quiet HEAD -- ERROR_QUIET RESULT_VARIABLE dirty)
    if(NOT dirty EQUAL 0)
      string(APPEND rev "-dirty")
    endif()
  endif()
  set(${out} ${rev} PARENT_SCOPE)
endfunction()
