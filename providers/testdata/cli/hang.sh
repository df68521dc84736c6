#!/bin/sh
# Writes its pid to the FIFO named by $1, then sleeps while holding the FIFO
# open. `exec` keeps the pid, so killing it closes the FIFO: the test sees
# end-of-file exactly when the process is gone, without polling.
exec 3>"$1"
echo $$ >&3
exec sleep 600
