"""PlatformIO dev-platform ``resilinet-guard``: environments that cannot run yet stop with one line.

Two kinds of environment use it (see platformio/README.md):

* ``[env:no_build]`` of the committed root ``platformio.ini``: the placeholder until ``python -m host.build``
  points ``build/current`` at a build (whose ``platformio.ini`` the root reads through ``extra_configs``);
* a real board's environment while its platform (``ststm32``) is not installed in the core dir: the build's
  ``platformio.ini`` includes the file that switches it to ``platform = ststm32`` only when
  ``<core_dir>/platforms/ststm32`` exists.

``pio run`` installs an environment's platform and then calls :meth:`configure_project_packages` before it
installs any package or library, so this is the first code of ours that PlatformIO runs: it prints the
environment's ``custom_resilinet_stop`` as ``error: ...`` and ends ``pio`` (exit status 1). Under
``pio pkg install`` (no targets) it lets PlatformIO go on: this platform has no packages.
"""
import sys

from platformio.public import PlatformBase


class ResilinetguardPlatform(PlatformBase):  # class name: PlatformIO's rule for the name "resilinet-guard"
    def configure_project_packages(self, env, targets=None):
        if targets is not None:  # pio run [-t ...]; pio pkg install passes None
            message = self.config.get(f"env:{env}", "custom_resilinet_stop", "") or \
                f"environment {env} has nothing to build (custom_resilinet_stop is empty)"
            sys.stderr.write(f"error: {message}\n")
            sys.stderr.flush()
            raise SystemExit(1)
        return super().configure_project_packages(env, targets)
