#!/bin/sh
# a comment
. ./lib.sh
source "conf/env.sh"
set -eu
echo "hello # not a comment" 'single # quoted' \# escaped
x=$(printf '%s' "$1") # comment after
y=`date`
