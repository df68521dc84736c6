#!/bin/sh
# Writes its pid to the FIFO named by $1, prints part of an answer, then
# sleeps while holding the FIFO open (see hang.sh for why `exec`).
exec 3>"$1"
echo $$ >&3
cat >/dev/null
printf 'partial'
exec sleep 600
