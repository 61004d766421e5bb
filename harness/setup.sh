#!/usr/bin/env bash
# Installs the Debian packages mpspec needs to build and test, and only those missing.
#
#   harness/setup.sh            (./mpspec run and ./mpspec test call it; MPSPEC_NO_SETUP=1 skips)
#
# Says exactly what it installs. Silent, and fast, when everything is present. Runs
# `apt-get update` (once) only when something must be installed; uses sudo only when not root.
set -euo pipefail

# Libraries and tools, checked with dpkg-query.
packages=(libgtest-dev librapidcheck-dev libbenchmark-dev nlohmann-json3-dev libssl-dev python3)
# Optional: backends that run only when their package is there (python3-multiprocess: backend
# multiprocess; python3-fasteners: backend fasteners; libboost-dev: the Boost.Interprocess peers
# of the benchmarks), and chromium (with a font, fonts-dejavu-core) for the HTML report's
# browser test, CTest harness.html_chromium, skipped without it. Installed when missing, best
# effort: a failure is reported, never fatal.
optional=(python3-multiprocess python3-fasteners libboost-dev chromium fonts-dejavu-core)
# Commands: their Debian package is installed only when the command is absent (a cmake or a
# compiler from elsewhere is fine).
declare -A commands=([cmake]=cmake [g++]=g++)

say() { printf 'setup.sh: %s\n' "$*" >&2; }

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  say "not a Debian-like system (no dpkg-query / apt-get): install the equivalents of"
  say "  ${packages[*]} cmake g++"
  say "yourself; CMake reports what it cannot find."
  exit 0
fi

missing=()
missing_optional=()
# One dpkg-query call for every package; "ii " in db:Status-Abbrev means installed.
installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${packages[@]}" "${optional[@]}" 2>/dev/null || true)"
for p in "${packages[@]}"; do
  if ! grep -Eq "^${p}(:[a-z0-9]+)? ii" <<<"$installed"; then
    missing+=("$p")
  fi
done
for p in "${optional[@]}"; do
  if ! grep -Eq "^${p}(:[a-z0-9]+)? ii" <<<"$installed"; then
    missing_optional+=("$p")
  fi
done
for c in "${!commands[@]}"; do
  command -v "$c" >/dev/null 2>&1 || missing+=("${commands[$c]}")
done

# Best effort: the optional packages. Never fails setup.
install_optional() {
  ((${#missing_optional[@]} == 0)) && return 0
  if ((EUID != 0)) && ! command -v sudo >/dev/null 2>&1; then
    say "optional packages missing: ${missing_optional[*]} (what needs them is skipped);"
    say "  not root and no sudo: to add them, as root: apt-get install -y ${missing_optional[*]}"
    return 0
  fi
  local sudo_opt=()
  ((EUID != 0)) && sudo_opt=(sudo)
  say "installing missing optional packages: ${missing_optional[*]}"
  if ! ${updated:-false}; then
    ${sudo_opt[@]+"${sudo_opt[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
      say "warning: apt-get update failed"
  fi
  if ${sudo_opt[@]+"${sudo_opt[@]}"} env DEBIAN_FRONTEND=noninteractive \
       apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" >/dev/null; then
    say "installed: ${missing_optional[*]}"
  else
    say "warning: could not install the optional packages ${missing_optional[*]}; their" \
        "backends stay unavailable (./mpspec backends says why), the tests needing them skip"
  fi
  return 0
}

if ((${#missing[@]} == 0)); then
  install_optional || true
  # cmake present: warn (only) when it is older than the presets need.
  if v="$(cmake --version 2>/dev/null | sed -n '1s/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')" &&
     [[ -n "$v" ]] && ! printf '3.25\n%s\n' "$v" | sort -V -C; then
    say "warning: cmake $v is older than 3.25, which CMakePresets.json needs"
  fi
  exit 0
fi

if ((EUID == 0)); then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  say "missing Debian packages: ${missing[*]}"
  say "not root and no sudo: run as root:  apt-get update && apt-get install -y ${missing[*]}"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
say "installing missing Debian packages: ${missing[*]}"
say "running: ${sudo[*]:+${sudo[*]} }apt-get update"
${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq
say "running: ${sudo[*]:+${sudo[*]} }apt-get install -y --no-install-recommends ${missing[*]}"
${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
say "installed: ${missing[*]}"
updated=true
install_optional || true
