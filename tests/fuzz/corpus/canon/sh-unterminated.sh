#!/bin/sh
echo "never closed
cat <<EOF2
no end
