# micrOS firmware toolchains: one file, one target per port. Build context: the
# repository root (.dockerignore lets only docker/ in).
#   docker build --platform linux/amd64 --target esp8266 -t micros-build:esp8266-v1.28.0 .
#   docker build --target esp32 -t micros-build:esp32-v1.28.0 .
#   docker build --target unix -t micros-build:unix-v1.28.0 .
# `invoke build` runs these; every version is pinned here and in
# docker/toolchain.json (a test keeps the two equal). Fixed paths inside the
# container: MicroPython in /opt/micropython, micrOS mounted at /micros,
# output in /out. Everything a build needs is fetched here: builds run with
# `docker run --network none`, unprivileged (--user uid:gid; the image user is
# "builder", uid 10001).
# Base images: the ARG defaults below are the tags, with "@sha256:..." appended
# once their digest is known (docker/toolchain.json says which are).

ARG MICROPY_VERSION=v1.28.0
ARG IDF_IMAGE=espressif/idf:v5.5.1
ARG DEBIAN_IMAGE=debian:12.12-slim

# --- MicroPython at the pinned release tag, with its submodules ---
FROM ${DEBIAN_IMAGE} AS source
ARG MICROPY_VERSION
# The base image tag pins the Debian release; its packages are not pinned one by one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git make \
    && rm -rf /var/lib/apt/lists/*
RUN git clone --depth 1 --branch "${MICROPY_VERSION}" \
        https://github.com/micropython/micropython.git /opt/micropython \
    && make -C /opt/micropython/ports/esp8266 submodules \
    && printf 'MICROPY_GIT_TAG=%s\nMICROPY_GIT_HASH=%s\n' \
        "${MICROPY_VERSION}" "$(git -C /opt/micropython rev-parse --short=9 HEAD)" \
        > /opt/micropython/micros-build.env
COPY docker/sdkconfig.reproducible /opt/micropython/ports/esp32/boards/sdkconfig.reproducible
RUN cat /opt/micropython/ports/esp32/boards/sdkconfig.reproducible \
        >> /opt/micropython/ports/esp32/boards/sdkconfig.base

# --- ESP8266: xtensa-lx106 toolchain (the one MicroPython's CI uses) ---
# Its binaries are x86-64 Linux only: invoke build adds --platform linux/amd64.
FROM ${DEBIAN_IMAGE} AS esp8266
ARG MICROPY_VERSION
ARG XTENSA_LX106_URL=https://micropython.org/resources/xtensa-lx106-elf-standalone.tar.gz
# Empty until the first download is verified; then the download must match.
# invoke build records the sha256 the image saw in build-info.json either way.
ARG XTENSA_LX106_SHA256=
ARG ESPTOOL_VERSION=3.3.1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates curl gcc git libc6-dev make python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL -o /tmp/xtensa.tar.gz "${XTENSA_LX106_URL}" \
    && if [ -n "${XTENSA_LX106_SHA256}" ]; then \
        echo "${XTENSA_LX106_SHA256}  /tmp/xtensa.tar.gz" | sha256sum -c -; fi \
    && mkdir -p /opt/xtensa \
    && tar -xzf /tmp/xtensa.tar.gz -C /opt/xtensa \
    && sha256sum /tmp/xtensa.tar.gz | cut -d' ' -f1 > /opt/xtensa/toolchain.sha256 \
    && rm -f /tmp/xtensa.tar.gz /opt/xtensa/xtensa-lx106-elf/bin/esptool.py
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir "esptool==${ESPTOOL_VERSION}" "pyserial==3.5"
ENV PATH=/opt/xtensa/xtensa-lx106-elf/bin:/opt/venv/bin:$PATH \
    SOURCE_DATE_EPOCH=1775433600 \
    MICROPY_VERSION=${MICROPY_VERSION}
COPY --from=source /opt/micropython /opt/micropython
COPY --chmod=0755 docker/micros-env.sh /usr/local/bin/micros-env
RUN make -C /opt/micropython/mpy-cross \
    && useradd --create-home --uid 10001 --user-group builder \
    && chmod -R a+rwX /opt/micropython
USER 10001:10001
WORKDIR /opt/micropython
ENTRYPOINT ["/usr/local/bin/micros-env"]

# --- ESP32, C3, S3: the ESP-IDF image that MicroPython release recommends ---
FROM ${IDF_IMAGE} AS esp32
ARG MICROPY_VERSION
# The IDF component manager adds components during CMake
# (ports/esp32/main/idf_component.yml; versions and hashes pinned by
# ports/esp32/lockfiles/dependencies.lock.<target>): mdns for all, lan867x for
# the ESP32, tinyusb for the S3 from a git repository. Registry components are
# kept in a cache that outlives a target switch; tinyusb, which only git can
# fetch, stays in managed_components because the S3 is fetched last. No
# registry query for newer versions at build time.
ENV SOURCE_DATE_EPOCH=1775433600 \
    MICROPY_VERSION=${MICROPY_VERSION} \
    IDF_COMPONENT_CACHE_PATH=/opt/idf-component-cache \
    IDF_COMPONENT_CHECK_NEW_VERSION=0
COPY --from=source /opt/micropython /opt/micropython
COPY --chmod=0755 docker/micros-env.sh /usr/local/bin/micros-env
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Network: esp32 submodules and IDF components, per board (`make submodules`
# runs `idf.py reconfigure`, which runs the component manager).
RUN . /opt/esp/idf/export.sh >/dev/null \
    && for b in ESP32_GENERIC ESP32_GENERIC_C3 ESP32_GENERIC_S3; do \
        make -C /opt/micropython/ports/esp32 BOARD="$b" submodules || exit 1; done \
    && rm -rf /opt/micropython/ports/esp32/build-*
# No network: every board configures from what the image holds, or the image
# build fails here. A board switch deletes the other boards' components, so
# managed_components is put back after each.
ARG ESP32_PORT=/opt/micropython/ports/esp32
RUN --network=none . /opt/esp/idf/export.sh >/dev/null \
    && cp -a "$ESP32_PORT/managed_components" /tmp/managed_components \
    && for b in ESP32_GENERIC_S3 ESP32_GENERIC ESP32_GENERIC_C3; do \
        idf.py -C "$ESP32_PORT" -D MICROPY_BOARD="$b" -B "/tmp/offline-$b" reconfigure || exit 1; \
        rm -rf "$ESP32_PORT/managed_components" \
        && cp -a /tmp/managed_components "$ESP32_PORT/managed_components"; done \
    && rm -rf /tmp/offline-* /tmp/managed_components
RUN make -C /opt/micropython/mpy-cross \
    && useradd --create-home --uid 10001 --user-group builder \
    && chmod -R a+rwX /opt/micropython /opt/idf-component-cache
USER 10001:10001
WORKDIR /opt/micropython
ENTRYPOINT ["/usr/local/bin/micros-env"]

# --- unix: the unix port with micrOS frozen in, a host binary for the virtual board ---
# (invoke build --board unix; ports/unix/Makefile, variants/standard). Its submodules
# (berkeley-db, mbedtls, micropython-lib) are fetched here, at image build time.
FROM ${DEBIAN_IMAGE} AS unix
ARG MICROPY_VERSION
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates gcc git libc6-dev libffi-dev make pkg-config python3 \
    && rm -rf /var/lib/apt/lists/*
ENV SOURCE_DATE_EPOCH=1775433600 \
    MICROPY_VERSION=${MICROPY_VERSION}
COPY --from=source /opt/micropython /opt/micropython
COPY --chmod=0755 docker/micros-env.sh /usr/local/bin/micros-env
RUN make -C /opt/micropython/ports/unix VARIANT=standard submodules \
    && make -C /opt/micropython/mpy-cross \
    && useradd --create-home --uid 10001 --user-group builder \
    && chmod -R a+rwX /opt/micropython
USER 10001:10001
WORKDIR /opt/micropython
ENTRYPOINT ["/usr/local/bin/micros-env"]
