#!/bin/sh
# Ends its answer with the first byte of a two-byte character.
cat >/dev/null
printf 'ok\303'
