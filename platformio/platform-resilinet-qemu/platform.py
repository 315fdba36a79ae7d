"""PlatformIO dev-platform of resilinet-mcu's emulated boards (see builder/main.py)."""
from platformio.public import PlatformBase


class ResilinetqemuPlatform(PlatformBase):  # class name: PlatformIO's rule for the name "resilinet-qemu"
    pass
