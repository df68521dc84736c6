#!/bin/sh
# Prints the printf format $2, then, once the test has written a line to the
# FIFO named by $1, the format $3: two writes the adapter must read apart.
cat >/dev/null
printf "$2"
read -r _ <"$1"
printf "$3"
