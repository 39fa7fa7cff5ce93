#!/bin/bash
cat <<EOT
# inside a heredoc, kept
$HOME
EOT
cat <<-'RAW'
	$not_expanded
	RAW
case "$1" in
  a|b) echo ab ;;  # comment
  *) echo other ;;
esac
