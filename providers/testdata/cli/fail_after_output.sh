#!/bin/sh
# Starts answering, then fails: the stream must end with an error, not `done`.
cat >/dev/null
printf 'partial answer\n'
echo "usage limit reached for this subscription" >&2
exit 3
