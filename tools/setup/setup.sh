#!/usr/bin/env bash
# `npm run setup`: everything a fresh clone needs, in one command.
#  1. the Debian packages of debian-packages.txt: installed when run as root and some are missing; otherwise the
#     exact apt-get command is printed (TSVMM_SETUP_PACKAGES=0 skips this step);
#  2. node modules (root and tools/lint), the build, and the guest kit (kernel + initramfs, cached in ~/.cache).
# `setup.sh --packages-only` does step 1 alone.
set -uo pipefail
cd "$(dirname "$0")/../.."
say() { echo "setup: $*"; }

missing=""
if [ "${TSVMM_SETUP_PACKAGES:-1}" != "0" ]; then
  # the arm64 guest kit and sandbox fetch Debian's arm64 kernel and busybox (apt-get download <pkg>:arm64)
  if command -v dpkg >/dev/null && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    if [ "$(id -u)" = "0" ]; then
      say "adding the arm64 architecture to dpkg (for the arm64 guest kit)"
      { dpkg --add-architecture arm64 && apt-get update; } || { say "dpkg --add-architecture arm64 failed"; exit 1; }
    else
      say "the arm64 guest kit needs: sudo dpkg --add-architecture arm64 && sudo apt-get update"
    fi
  fi
  if ! command -v dpkg-query >/dev/null; then
    say "not a Debian system: install the equivalents of: $(tools/setup/packages.sh | tr '\n' ' ')"
  else
    missing=$(tools/setup/packages.sh --missing | tr '\n' ' ' | sed 's/ *$//')
    if [ -z "$missing" ]; then
      say "host packages: all installed"
    elif [ "$(id -u)" = "0" ]; then
      say "installing host packages: $missing"
      export DEBIAN_FRONTEND=noninteractive
      # shellcheck disable=SC2086 # one word per package
      { apt-get update && apt-get install -y --no-install-recommends $missing; } || { say "apt-get failed"; exit 1; }
      missing=""
    else
      say "host packages missing: $missing"
      say "install them as root with:"
      echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $missing"
    fi
  fi
fi

[ "${1:-}" = "--packages-only" ] && exit 0
npm ci || exit 1
npm ci --prefix tools/lint || exit 1
npm run build || exit 1
node dist/hosts/guestkit/cli.js setup || {
  [ -n "$missing" ] && say "the guest kit needs the host packages above: install them, then run npm run setup again"
  exit 1
}
# the QEMU that emulates the sandbox's L1 (bookworm-backports' build, cached; hosts/sandbox/l1-qemu.ts): without it
# L1 runs under the host's QEMU 7.2, whose nested SVM is the less stable (hosts/sandbox/README.md)
node dist/hosts/sandbox/l1-qemu.js
if [ -n "$missing" ]; then
  say "done, except the host packages above (the sandbox and some tests need them)"
fi
