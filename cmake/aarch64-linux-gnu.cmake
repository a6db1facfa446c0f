# cmake/aarch64-linux-gnu.cmake - CMake toolchain file for the aarch64 cross build
# (tools/build-aarch64 makes build-aarch64/ with it): Debian 12's gcc-aarch64-linux-gnu and
# g++-aarch64-linux-gnu, the arm64 libraries of multiarch (libcmocka-dev:arm64,
# libconfig-dev:arm64 in /usr/lib/aarch64-linux-gnu), and qemu-aarch64-static as
# CMAKE_CROSSCOMPILING_EMULATOR, so that CTest runs the test programs under qemu-user.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(TCM_AARCH64_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${TCM_AARCH64_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${TCM_AARCH64_TRIPLE}-g++)

# -L /: the guest's dynamic loader, libc and libraries are Debian's arm64 multiarch packages
# (libc6:arm64 and the others, in /lib/aarch64-linux-gnu), one matched set. Not
# -L /usr/aarch64-linux-gnu: there the loader is libc6-arm64-cross's (2.36-8cross1), but it
# reads the host's /etc/ld.so.cache (qemu falls back to host paths), which sends it to
# multiarch libc.so.6 (2.36-9+deb12u14). The two disagree on the loader's private
# _rtld_global layout (4512 vs 4520 bytes), and every pthread_create and fork then loops for
# ever walking the thread-stack lists: that was the "hang" of threaded tests under qemu.
find_program(TCM_QEMU_AARCH64 qemu-aarch64-static REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${TCM_QEMU_AARCH64} -L /)

# Headers and libraries of the target only; programs (sh, nm, python3) of the host. The roots
# are the cross compiler's sysroot and /, where multiarch keeps the arm64 libraries that
# pkg-config names (/usr/lib/aarch64-linux-gnu).
set(CMAKE_FIND_ROOT_PATH /usr/${TCM_AARCH64_TRIPLE} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Debian's cross pkg-config (from pkgconf:arm64) reads the arm64 .pc files, never the host's.
set(PKG_CONFIG_EXECUTABLE ${TCM_AARCH64_TRIPLE}-pkg-config)
