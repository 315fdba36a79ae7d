# Builder of the resilinet-qemu dev-platform (PlatformIO runs this file with SCons).
#
# One way to build: the compile flags and the source list of every node come from
# host/deploy/firmware.py, written into platformio.ini by host/deploy/pio_ini.py (build_flags,
# build_src_filter); the link step (cpu flags, LINK_FLAGS, stack size, sections.ld plus a
# memory.ld generated from boards/<board>/board.toml) is set here by host.deploy.pio_scons.configure_env(),
# the same function the real-board environments call through platformio/resilinet_env.py.
#
# Targets: build (default) -> $BUILD_DIR/firmware.elf + firmware.bin; upload -> (re)start the
# emulated board in QEMU, UART on the TCP port of the environment's custom_emulator_port
# (stop it with `python -m codegen.emulator stop --pidfile <custom_emulator_pidfile>`).
import os
import sys
from os.path import join

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment  # pylint: disable=import-error

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()

# The platform lives in <repo>/platformio/platform-resilinet-qemu: make the repository importable.
_repo = env.GetProjectOption("custom_resilinet_repo", "") or os.path.realpath(
    join(platform.get_dir(), os.pardir, os.pardir))
if _repo not in sys.path:
    sys.path.insert(0, _repo)
from host.deploy import pio_scons as resilinet_pio  # noqa: E402  pylint: disable=wrong-import-position

env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="arm-none-eabi-gdb",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    # Compile flags: platformio.ini's build_flags (host/deploy/firmware.py's); nothing added here.
    CCFLAGS=[],
    LINKFLAGS=[],
    LIBS=[],
    SIZEPROGREGEXP=r"^(?:\.text|\.data|\.rodata|\.text.align|\.ARM.exidx)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
)
resilinet_pio.configure_env(env)

env.Append(BUILDERS=dict(
    ElfToBin=Builder(action=env.VerboseAction("$OBJCOPY -O binary $SOURCES $TARGET", "Building $TARGET"),
                     suffix=".bin")))

target_elf = env.BuildProgram()
target_bin = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)
env.Depends(target_bin, "checkprogsize")
target_buildprog = env.Alias("buildprog", target_bin, target_bin)

AlwaysBuild(env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))

# ---- upload: (re)start the emulated board -------------------------------------------------
upload_protocol = env.subst("$UPLOAD_PROTOCOL") or "qemu"
if upload_protocol == "qemu":
    upload_actions = [env.VerboseAction(resilinet_pio.scons_upload_action, "Starting $SOURCE in QEMU")]
elif upload_protocol == "custom":
    upload_actions = [env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE")]
else:
    sys.stderr.write("Error: upload protocol %r: the emulated boards know 'qemu' and 'custom'\n" % upload_protocol)
    env.Exit(1)
AlwaysBuild(env.Alias("upload", target_elf, upload_actions))

Default([target_buildprog])
