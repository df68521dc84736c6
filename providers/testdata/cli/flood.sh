#!/bin/sh
# Writes its pid to the FIFO named by $1, then prints without end while
# holding the FIFO open (see hang.sh for why `exec`).
exec 3>"$1"
echo $$ >&3
exec yes 'an answer that never ends'
