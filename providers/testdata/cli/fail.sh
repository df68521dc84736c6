#!/bin/sh
# Fails the way a subscription CLI does when its quota is used up.
cat >/dev/null
echo "usage limit reached for this subscription" >&2
exit 3
