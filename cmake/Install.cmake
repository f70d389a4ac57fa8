# Install rules for what ships around the binaries: the systemd unit, the default configuration and the
# section 5 and 8 manual pages. The binaries, the D-Bus policy and interface, fragtunectl(1) and its
# bash completion are installed by their own CMakeLists.txt (src/daemon, src/ctl).
#
# The prefix is only final at install time (`cmake --install build --prefix /usr`, or dh_auto_install
# staging with DESTDIR): the unit's ExecStart/ExecReload and the /etc directory are therefore computed
# by install(CODE) from the install-time CMAKE_INSTALL_PREFIX, not from the configure-time
# CMAKE_INSTALL_FULL_* values.

include(GNUInstallDirs)

# systemd's unit directory is not under the prefix (/lib/systemd/system on Debian 12): ask systemd.pc.
# Override with -DFRAGTUNE_SYSTEMD_UNIT_DIR=... for a non-root test install.
if(NOT DEFINED FRAGTUNE_SYSTEMD_UNIT_DIR)
  pkg_get_variable(_fragtune_pc_unit_dir systemd systemdsystemunitdir)
  if(NOT _fragtune_pc_unit_dir)
    set(_fragtune_pc_unit_dir "lib/systemd/system")
  endif()
  set(FRAGTUNE_SYSTEMD_UNIT_DIR "${_fragtune_pc_unit_dir}"
      CACHE STRING "Where fragtuned.service is installed (absolute, or relative to the prefix)")
endif()

# A configure-time rendering of the unit for people reading the build tree (and for the unit's
# tests, which rewrite ExecStart to the built binary). The installed copy is rendered again below.
set(FRAGTUNE_UNIT_TEMPLATE ${PROJECT_SOURCE_DIR}/systemd/fragtuned.service.in)
configure_file(${FRAGTUNE_UNIT_TEMPLATE} ${PROJECT_BINARY_DIR}/systemd/fragtuned.service @ONLY)

# Install-time rendering: the same template, ExecStart from the prefix in force when installing.
# /etc follows GNUInstallDirs' special cases: prefix / or /usr -> /etc, /opt/X -> /etc/opt/X, else
# PREFIX/etc (an absolute CMAKE_INSTALL_SYSCONFDIR is used as given).
install(CODE "
  set(_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  set(_sbindir \"${CMAKE_INSTALL_SBINDIR}\")
  if(NOT IS_ABSOLUTE \"\${_sbindir}\")
    set(_sbindir \"\${_prefix}/\${_sbindir}\")
  endif()
  set(_bindir \"${CMAKE_INSTALL_BINDIR}\")
  if(NOT IS_ABSOLUTE \"\${_bindir}\")
    set(_bindir \"\${_prefix}/\${_bindir}\")
  endif()
  set(_sysconfdir \"${CMAKE_INSTALL_SYSCONFDIR}\")
  if(NOT IS_ABSOLUTE \"\${_sysconfdir}\")
    if(_prefix STREQUAL \"/\" OR _prefix STREQUAL \"/usr\")
      set(_sysconfdir \"/etc\")
    elseif(_prefix MATCHES \"^/opt/\")
      set(_sysconfdir \"/etc\${_prefix}\")
    else()
      set(_sysconfdir \"\${_prefix}/\${_sysconfdir}\")
    endif()
  endif()
  set(_unitdir \"${FRAGTUNE_SYSTEMD_UNIT_DIR}\")
  if(NOT IS_ABSOLUTE \"\${_unitdir}\")
    set(_unitdir \"\${_prefix}/\${_unitdir}\")
  endif()

  # Rendered into a directory of its own per destination, so concurrent installs (tests, packaging)
  # never share a half-written file.
  string(MD5 _key \"\$ENV{DESTDIR}|\${_prefix}\")
  set(_stage \"${PROJECT_BINARY_DIR}/systemd/install-\${_key}\")
  set(CMAKE_INSTALL_FULL_SBINDIR \"\${_sbindir}\")
  set(CMAKE_INSTALL_FULL_BINDIR \"\${_bindir}\")
  set(CMAKE_INSTALL_FULL_SYSCONFDIR \"\${_sysconfdir}\")
  configure_file(\"${FRAGTUNE_UNIT_TEMPLATE}\" \"\${_stage}/fragtuned.service\" @ONLY)

  file(INSTALL DESTINATION \"\${_unitdir}\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES \"\${_stage}/fragtuned.service\")
  # The default configuration: a conffile in the Debian package (dh_installdeb marks every /etc file).
  file(INSTALL DESTINATION \"\${_sysconfdir}/fragtune\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES \"${PROJECT_SOURCE_DIR}/config/fragtune.toml\")
  file(REMOVE_RECURSE \"\${_stage}\")
")

# Manual pages of sections 5 and 8 (section 1 is installed beside fragtunectl in src/ctl).
foreach(_section 5 8)
  file(GLOB _fragtune_pages CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/man/*.${_section})
  if(_fragtune_pages)
    install(FILES ${_fragtune_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_section})
  endif()
endforeach()
