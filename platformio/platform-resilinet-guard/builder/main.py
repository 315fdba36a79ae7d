# Builder of the resilinet-guard dev-platform: reached only if PlatformIO skipped the platform's
# configure_project_packages (platform.py), which normally stops `pio run` first. Prints the same one line.
import sys

from SCons.Script import DefaultEnvironment  # pylint: disable=import-error

env = DefaultEnvironment()
sys.stderr.write("error: %s\n" % (env.GetProjectOption("custom_resilinet_stop", "")
                                  or "environment %s has nothing to build" % env["PIOENV"]))
env.Exit(1)
