"""The firmware version (`fwv`, BootNotification firmwareVersion).

`make release VERSION=x.y.z` puts its own compiled copy of this module into the bundle, so
an installed bundle reports the version it was built with; this file is what a source tree
or `make deploy` reports. tools/release.py reads the default release version from here.
"""

VERSION = "0.1.0"
