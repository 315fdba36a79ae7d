# PlatformIO extra script (pre:) of the real-board environments in platformio.ini (platform = ststm32,
# no framework). Adds host/deploy/firmware.py's link step -- cpu flags (with the hard-float ABI that
# build_flags cannot pass to the linker), LINK_FLAGS, stack size, firmware/bsp/sections.ld with
# a memory.ld generated from boards/<board>/board.toml -- and, with custom_cmsis_nn_dir, Arm's CMSIS-NN sources.
# The emulated boards' builder (platform-resilinet-qemu/builder/main.py) calls the same function.
import sys

Import("env")  # noqa: F821  pylint: disable=undefined-variable

_repo = env.GetProjectOption("custom_resilinet_repo")  # noqa: F821
if _repo not in sys.path:
    sys.path.insert(0, _repo)
from host.deploy import pio_scons as resilinet_pio  # noqa: E402

resilinet_pio.configure_env(env)  # noqa: F821
