# The Debian package: `make deb`, or `cpack -G DEB` in a build directory.
#
# Files come from the install rules (cmake/Install.cmake and the per-directory install() lines),
# staged with DESTDIR and the prefix /usr, so the unit's ExecStart is /usr/sbin/fragtuned and the
# configuration lands in /etc/fragtune. Maintainer scripts and conffiles: packaging/debian/.

set(FRAGTUNE_PACKAGE_MAINTAINER "fragtune maintainers <root@localhost>"
    CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fragtune)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "memory fragmentation and reserve tuning daemon")
set(CPACK_PACKAGE_CONTACT "${FRAGTUNE_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${FRAGTUNE_PACKAGE_MAINTAINER}")
# The long description; CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY above it as the synopsis line
# and indents every line by one space, as Debian's control format wants.
set(CPACK_PACKAGE_DESCRIPTION
    "fragtuned watches memory pressure (PSI), buddy allocator fragmentation, watermarks,
reclaim and compaction counters and page allocation failures in the kernel log, and
tunes vm.min_free_kbytes, vm.watermark_scale_factor, vm.compaction_proactiveness,
vm.vfs_cache_pressure and vm.swappiness within configured bounds. Every change is
explained in the journal and over D-Bus (fragtunectl), and persisted to
/etc/sysctl.d so that it survives a reboot.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # fragtune_<version>_<arch>.deb

# Library dependencies from dpkg-shlibdeps (package dpkg-dev); the bus is a service, not a library.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "default-dbus-system-bus | dbus-system-bus")

set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
# Scripts 0755, conffiles 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

# Stage with DESTDIR and the real prefix: install(CODE) in cmake/Install.cmake then sees /usr and
# renders ExecStart=/usr/sbin/fragtuned; absolute destinations (/etc, /lib/systemd) stay absolute.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

include(CPack)
