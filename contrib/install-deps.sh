#!/bin/sh
# Installs the Debian packages cashet needs to build and test, if missing.
# clang and its sanitizer runtimes (libclang-rt-dev) build the sanitizer
# suite (make SANITIZE=...) and the fuzzers; clang-format is make format-check.
# nginx (WebDAV) is the HTTP cache the cache+http tests start; ssh-keygen
# (openssh-client) signs and checks runs. chromium opens pipeline reports in
# tests/bats/31-report.bats; graphviz's dot lays their graphs out (optional
# at run time: a built-in layout stands in). slurm-wlm and munge start the
# one-node cluster of tests/bats/34-slurm.bats.
pkgs="build-essential pkg-config libgit2-dev libsqlite3-dev libxxhash-dev libzstd-dev zlib1g-dev
libssl-dev libdeflate-dev libjson-c-dev nettle-dev libmicrohttpd-dev libcurl4-openssl-dev libhiredis-dev libcmocka-dev curl bats bats-assert bats-support git python3 sqlite3 zsh fish groff-base redis-server nginx openssh-client
clang libclang-rt-dev clang-format chromium graphviz slurm-wlm munge"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
