# Run by `cmake --install` (install(CODE) in CMakeLists.txt), not at
# configure time: the files that name installed paths (the pkg-config file,
# the systemd units) are generated for the prefix being installed to, so
# that `cmake --install build --prefix DIR` and the .deb (prefix /usr) get
# paths that are right for them. DESTDIR is not part of the paths: it is
# where the files are staged, not where they will run.
#
# In: VIGIL_SOURCE_DIR, VIGIL_OUT (a directory for the generated files),
# PROJECT_VERSION, and the GNUInstallDirs directories (relative to the
# prefix, or absolute) as VIGIL_BINDIR, VIGIL_LIBDIR, VIGIL_INCLUDEDIR.
set(VIGIL_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(d BINDIR LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${VIGIL_${d}}")
    set(VIGIL_FULL_${d} "${VIGIL_${d}}")
  else()
    set(VIGIL_FULL_${d} "${VIGIL_PREFIX}/${VIGIL_${d}}")
  endif()
endforeach()
configure_file("${VIGIL_SOURCE_DIR}/cmake/vigil.pc.in" "${VIGIL_OUT}/vigil.pc" @ONLY)
foreach(unit vigil-monitor vigil-agent vigil-peer)
  configure_file("${VIGIL_SOURCE_DIR}/examples/systemd/${unit}.service.in"
                 "${VIGIL_OUT}/${unit}.service" @ONLY)
endforeach()
