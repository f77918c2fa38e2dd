#!/bin/sh
# Entry point of the micrOS build images: run a command with the pinned build
# environment (MicroPython git tag and hash fixed at image build, ESP-IDF
# exported when the image has it), so the firmware version string does not
# depend on the state of the checkout.
set -eu
. /opt/micropython/micros-build.env
export MICROPY_GIT_TAG MICROPY_GIT_HASH
# the tree belongs to the image, the build runs as the host user (HOME=/tmp)
git config --global --add safe.directory '*' 2>/dev/null || true
if [ -f /opt/esp/entrypoint.sh ]; then
    exec /opt/esp/entrypoint.sh "$@"
fi
exec "$@"
