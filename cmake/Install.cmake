# Install layout (FHS, docs/operations.md) and Debian packages (CPack).
#
#   cmake --install build --prefix /usr        # or: DESTDIR=/tmp/root cmake --install build --prefix /usr
#   (cd build && cpack -G DEB)                 # vgpu_*.deb, vgpud_*.deb, vgpuctl_*.deb
#
# With the /usr prefix GNUInstallDirs puts configuration in /etc and state in
# /var. Components: `hook` (package vgpu: libvgpu.so), `daemon` (package
# vgpud: vgpud, its unit, example configuration), `cli` (package vgpuctl),
# and `docs` (shipped with vgpud).
# The docs and the unit use /usr paths; a plain `cmake --install build`
# installs there unless -DCMAKE_INSTALL_PREFIX says otherwise.
if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX "/usr" CACHE PATH "installation prefix" FORCE)
endif()
include(GNUInstallDirs)

# Absolute on purpose: configuration and units belong in /etc and
# /lib/systemd/system whatever the prefix (Debian 12 ships units there).
set(VGPU_SYSCONF_DIR "/etc/vgpu" CACHE PATH "where vgpud.yaml is installed")
set(VGPU_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE PATH "where vgpud.service is installed")

# The hook: libvgpu.so, loaded by path through LD_PRELOAD or /etc/ld.so.preload,
# so it lives in its own directory rather than on the linker's search path;
# and libvgpu-core.so, which libvgpu.so loads from its own directory on the
# first CUDA/NVML call (docs/architecture.md "Preload cost"): the two are one
# unit, installed side by side, never one without the other.
# GNUInstallDirs' libdir is multiarch on Debian (lib/x86_64-linux-gnu); the
# docs' /usr/lib/vgpu is kept as the one path on every architecture.
set(VGPU_HOOK_INSTALL_DIR "lib/vgpu")
install(TARGETS vgpu vgpu_core LIBRARY DESTINATION "${VGPU_HOOK_INSTALL_DIR}" COMPONENT hook)

install(TARGETS vgpud RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT daemon)
if(TARGET vgpu-driver-probe)
  install(TARGETS vgpu-driver-probe RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT daemon)
endif()
if(TARGET vgpu-device-plugin)
  install(TARGETS vgpu-device-plugin RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT daemon)
endif()
install(FILES "${CMAKE_SOURCE_DIR}/config/vgpud.example.yaml"
        DESTINATION "${VGPU_SYSCONF_DIR}" RENAME vgpud.yaml COMPONENT daemon)
install(FILES "${CMAKE_SOURCE_DIR}/config/vgpud.example.yaml"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}/examples" COMPONENT daemon)
configure_file("${CMAKE_SOURCE_DIR}/packaging/systemd/vgpud.service.in"
               "${CMAKE_BINARY_DIR}/packaging/vgpud.service" @ONLY)
install(FILES "${CMAKE_BINARY_DIR}/packaging/vgpud.service"
        DESTINATION "${VGPU_SYSTEMD_UNIT_DIR}" COMPONENT daemon)
file(GLOB VGPU_DOCS "${CMAKE_SOURCE_DIR}/docs/*.md")
install(FILES ${VGPU_DOCS} "${CMAKE_SOURCE_DIR}/README.md"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}" COMPONENT daemon)

install(TARGETS vgpuctl RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT cli)

# --- Debian packages --------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "vgpu")
set(CPACK_PACKAGE_VERSION "${VGPU_VERSION}")
set(CPACK_PACKAGE_CONTACT "vgpu maintainers <vgpu@localhost>")
set(CPACK_PACKAGE_VENDOR "vgpu")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL hook daemon cli)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # dpkg-shlibdeps: the real library dependencies
set(CPACK_DEBIAN_HOOK_PACKAGE_NAME "vgpu")
set(CPACK_DEBIAN_HOOK_PACKAGE_SECTION "libs")
set(CPACK_COMPONENT_HOOK_DESCRIPTION
    "vgpu CUDA interception library (libvgpu.so, libvgpu-core.so)\n Loaded with LD_PRELOAD into GPU programs: enforces a tenant's GPU memory\n quota and gates kernel launches on vgpud's GPU time lease.")
set(CPACK_DEBIAN_DAEMON_PACKAGE_NAME "vgpud")
set(CPACK_DEBIAN_DAEMON_PACKAGE_DEPENDS "vgpu (= ${VGPU_VERSION})")
set(CPACK_DEBIAN_DAEMON_PACKAGE_RECOMMENDS "vgpuctl (= ${VGPU_VERSION})")
set(CPACK_DEBIAN_DAEMON_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/debian/vgpud/conffiles"
    "${CMAKE_SOURCE_DIR}/packaging/debian/vgpud/postinst"
    "${CMAKE_SOURCE_DIR}/packaging/debian/vgpud/prerm"
    "${CMAKE_SOURCE_DIR}/packaging/debian/vgpud/postrm")
set(CPACK_COMPONENT_DAEMON_DESCRIPTION
    "vgpu node scheduler daemon (vgpud)\n Shares NVIDIA GPUs between tenants: hard memory quotas, configured shares of\n GPU time, an NVML/eBPF backstop against processes that bypass the hook.")
set(CPACK_DEBIAN_CLI_PACKAGE_NAME "vgpuctl")
set(CPACK_COMPONENT_CLI_DESCRIPTION
    "vgpu command-line client (vgpuctl)\n Manages tenants and shows GPUs, processes and shares through vgpud's admin API.")
include(CPack)
